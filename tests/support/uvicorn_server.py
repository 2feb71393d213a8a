"""A real `salescast serve` process for tests: free loopback port, given env, stopped by its group.

The server runs in its own session (process group), so `stop` and `kill` reach
uvicorn's worker processes and any training pool it started, not only the
supervisor whose pid `Popen` knows. Nothing is shared with the developer's
environment: every inherited `SALESCAST_*` variable is dropped, and the process
runs in a temp directory so no `.env` file is read.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from tests.support.redis_server import free_port


class UvicornServer:
    """One `python -m salescast serve` the test controls.

    `start` (waits until `GET /healthz` answers 200), `stop` (SIGTERM to the
    group, then SIGKILL), `kill` (SIGKILL to the group: the crash case),
    `restart` (kill if running, start again on the same port with the same
    env). `env` is added to a copy of the environment without `SALESCAST_*`
    variables; `SALESCAST_DATABASE_URL` should point into a temp directory.
    The combined stdout/stderr goes to `log_path`; `log_text()` reads it back
    for failure messages. Use as a context manager or call `stop`.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        workers: int = 1,
        port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.env = dict(env)
        self.workers = workers
        self.host = host
        self.port = port if port is not None else free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="salescast-uvicorn-"))
        self.log_path = self._dir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The supervisor's pid (also the process group id) while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60.0) -> UvicornServer:
        """Start the server and wait until `/healthz` answers 200."""
        if self._process is not None:
            raise RuntimeError("already running")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}
        env.update(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        args = [
            sys.executable, "-m", "salescast", "serve",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", str(self.workers),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                args,
                cwd=self._dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self._signal_group(signal.SIGKILL)
            raise
        return self

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, SIGKILL after 10 s) and remove the temp directory."""
        self._signal_group(signal.SIGTERM)
        shutil.rmtree(self._dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handler, no rollback, no flush."""
        self._signal_group(signal.SIGKILL)

    def restart(self, timeout: float = 60.0) -> None:
        """Kill if running, then start again on the same port with the same env."""
        self._signal_group(signal.SIGKILL)
        self.start(timeout)

    def log_text(self) -> str:
        """What the server printed so far (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> UvicornServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _signal_group(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # Workers and pool processes of the group may outlive the supervisor by a moment.
        self._wait_group_gone(process.pid, deadline=time.monotonic() + 10)

    @staticmethod
    def _wait_group_gone(pgid: int, *, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"salescast serve exited early:\n{self.log_text()[-3000:]}")
            if self._answers_healthz():
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"salescast serve on port {self.port} not healthy in {timeout} s:\n"
            f"{self.log_text()[-3000:]}"
        )

    def _answers_healthz(self) -> bool:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()
