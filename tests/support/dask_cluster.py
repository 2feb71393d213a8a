"""Dask clusters for the training tests: `dask scheduler` and `dask worker` processes by pid.

(The other kind, a `distributed.LocalCluster`, is started by the tests themselves.)
`DaskCommandCluster` runs the `dask` command line as users do (README): one
scheduler and N workers, each its own process on 127.0.0.1 with a free port,
stopped by pid (SIGTERM, then SIGKILL), with an atexit safety net. Workers run
without a nanny, so the pid a test holds is the worker itself: `kill_worker`
SIGKILLs it and it stays dead, as a lost machine would. Every process runs
this interpreter's `dask` with PYTHONPATH set to the tree under test, so the
workers import the same salescast as the tests.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.redis_process import wait_until
from tests.support.redis_server import free_port

HOST = "127.0.0.1"
DASK = Path(sys.executable).parent / "dask"
SOURCE_TREE = Path(__file__).resolve().parents[2] / "src"

_running: set[DaskCommandCluster] = set()


def worker_environment() -> dict[str, str]:
    """The environment of a worker: this one, with the tree under test importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SOURCE_TREE), env.get("PYTHONPATH", "")) if p
    )
    return env


class DaskCommandCluster:
    """A scheduler and `workers` single-threaded workers from the `dask` command line."""

    def __init__(self, workers: int = 2) -> None:
        self.port = free_port()
        self.address = f"tcp://{HOST}:{self.port}"
        self._workers_wanted = workers
        self._dir = Path(tempfile.mkdtemp(prefix="salescast-dask-"))
        self._scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> DaskCommandCluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        _running.add(self)
        env = worker_environment()
        self._scheduler = self._spawn(
            "scheduler",
            [str(DASK), "scheduler", "--host", HOST, "--port", str(self.port), "--no-dashboard"],
            env,
        )
        for index in range(self._workers_wanted):
            self.workers.append(
                self._spawn(
                    f"worker-{index}",
                    [
                        str(DASK),
                        "worker",
                        self.address,
                        "--host",
                        HOST,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--local-directory",
                        str(self._dir / f"worker-{index}"),
                    ],
                    env,
                )
            )
        wait_until(lambda: self.worker_count() == self._workers_wanted, 60, "dask workers joining")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self._dir / f"{name}.log").open("wb")
        try:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()  # the child holds its own descriptor

    def worker_count(self) -> int:
        """Workers the scheduler knows now (0 while it does not answer yet)."""
        from distributed import Client

        try:
            with Client(self.address, timeout=2, set_as_default=False) as client:
                return len(client.scheduler_info(n_workers=-1)["workers"])
        except OSError:
            return 0

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.workers if p.poll() is None]

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker by pid; it does not come back."""
        os.kill(pid, signal.SIGKILL)
        for process in self.workers:
            if process.pid == pid:
                process.wait(10)

    def log(self, name: str) -> str:
        path = self._dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to every process at once (workers first), SIGKILL to any still there."""
        processes = [p for p in [*self.workers, self._scheduler] if p and p.poll() is None]
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        _running.discard(self)


@atexit.register
def _stop_leftovers() -> None:
    for cluster in list(_running):
        cluster.stop()
