"""A real redis-server for tests: free loopback port, own temp dir, stopped by pid."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

# Servers started and not yet stopped; a safety net for a test that forgets
# to stop one (they are stopped when the interpreter exits).
_running: set[RedisServer] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now.

    Port 0 asks the kernel for one from its ephemeral range (32768-60999 on
    Linux). Ports below 10000 are refused all the same, whatever the range:
    they hold the well-known ones, Redis's default among them, so a test can
    never reach a developer's own Redis or a shared instance.
    """
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port >= 10_000:
            return port
    raise RuntimeError("no free loopback port at or above 10000")


class SignalledProcess:
    """Process control by pid that the test servers share: kill, freeze, thaw.

    For a class that keeps its ``subprocess.Popen`` in ``_process`` and its
    SIGSTOP state in ``_frozen``; ``_forget()`` runs once the process is gone.
    """

    _process: subprocess.Popen[bytes] | None
    _frozen: bool

    def kill(self) -> None:
        """SIGKILL: the process vanishes without closing connections gracefully."""
        self._terminate(signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing answers."""
        if self._process is None:
            raise RuntimeError("not running")
        os.kill(self._process.pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT after ``freeze``."""
        if self._process is not None and self._frozen:
            os.kill(self._process.pid, signal.SIGCONT)
        self._frozen = False

    def _terminate(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        self.thaw()
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._process = None
        self._forget()

    def _forget(self) -> None:
        """Hook: the process is gone."""


class RedisServer(SignalledProcess):
    """One redis-server process the test controls.

    ``start``/``stop`` (graceful, by pid), ``kill`` (SIGKILL), ``freeze``
    (SIGSTOP) / ``thaw`` (SIGCONT), ``restart`` (same port, empty data).
    Persistence is off (``--save "" --appendonly no``); data lives in a temp
    dir removed by ``stop``. Use as a context manager or call ``stop``.
    """

    def __init__(self, port: int | None = None, *, password: str | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.password = password
        self.host = "127.0.0.1"
        self._dir = Path(tempfile.mkdtemp(prefix="salescast-redis-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:<port>/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 5.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        if self._process is not None:
            raise RuntimeError("already running")
        args = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        log = (self._dir / "redis.log").open("ab")
        try:
            self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        _running.add(self)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory."""
        self._terminate(signal.SIGTERM)
        _running.discard(self)
        shutil.rmtree(self._dir, ignore_errors=True)

    def restart(self, timeout: float = 5.0) -> None:
        """Kill if running, then start again on the same port (empty data)."""
        self._terminate(signal.SIGKILL)
        self.start(timeout)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                log = (self._dir / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited: {log[-2000:]}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout} s")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@atexit.register
def _stop_forgotten_servers() -> None:
    for server in list(_running):
        server.stop()
