"""One redis-server process (a cluster node, a sentinel, a TLS server) for the topology fixtures.

The building block of ``redis_cluster``, ``redis_sentinel`` and ``redis_tls``; the
single-server tests keep using ``redis_server.RedisServer``, which this follows:
127.0.0.1 only, persistence off, stopped by pid (SIGTERM, then SIGKILL), and an
atexit safety net for whatever a test forgot to stop.

Every process carries ``PROCESS_MARKER`` in its process title (redis-server
rewrites its argv, so a temp dir passed on the command line would not show),
so ``pgrep -f salescast-redis-topology`` lists whatever is left running.
"""

from __future__ import annotations

import atexit
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.redis_server import REDIS_SERVER, SignalledProcess

PROCESS_MARKER = "salescast-redis-topology"
HOST = "127.0.0.1"


class Stoppable(Protocol):
    def stop(self) -> None: ...


# Processes started and not yet stopped, and the topologies owning them (whose
# ``stop`` also removes their temp dir); both are stopped when the interpreter exits.
_running_nodes: set[RedisNode] = set()
_running_topologies: set[Stoppable] = set()


def track_topology(topology: Stoppable) -> None:
    """Have ``topology.stop()`` called at interpreter exit unless ``untrack_topology`` ran."""
    _running_topologies.add(topology)


def untrack_topology(topology: Stoppable) -> None:
    _running_topologies.discard(topology)


def no_retry() -> Retry:
    """redis-py's retry policy for "fail at once": the fixtures' own clients poll, and a
    default client retries a refused connection 3 times with backoff (seconds)."""
    return Retry(NoBackoff(), 0)


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> object:
    """Poll ``condition`` until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)


class RedisNode(SignalledProcess):
    """One redis-server process: ``start``/``stop``/``kill``/``freeze``/``thaw``/``restart``.

    ``args`` are passed after the optional config file; ``--bind``, ``--dir``,
    the log file and the process title are added here. ``port`` is the port
    PING is checked on (the TLS port when ``tls`` is given, then the probe
    does a TLS handshake with that context). The directory is the owner's:
    ``stop`` leaves it in place (a cluster node keeps its nodes.conf there
    across a restart).
    """

    def __init__(
        self,
        directory: Path,
        port: int,
        args: Sequence[str] = (),
        *,
        config_file: Path | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = HOST
        self.port = port
        self.directory = directory
        self.password = password
        self._args = list(args)
        self._config_file = config_file
        self._tls = tls
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def pid(self) -> int | None:
        """The process's pid while it runs (also while frozen)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self, timeout: float = 10.0) -> RedisNode:
        """Start the process and wait until it answers PING."""
        if self._process is not None:
            raise RuntimeError("already running")
        args = [REDIS_SERVER]
        if self._config_file is not None:
            args.append(str(self._config_file))
        args += self._args
        args += [
            "--bind", self.host,
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--logfile", "",
            "--proc-title-template", "{title} {listen-addr} {server-mode} " + PROCESS_MARKER,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        _running_nodes.add(self)
        try:
            wait_until(self._ready, timeout, f"redis-server on port {self.port} answering PING")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, SIGKILL after 5 s)."""
        self._terminate(signal.SIGTERM)

    def restart(self, timeout: float = 10.0) -> None:
        """Kill if running, then start again on the same port and with the same arguments."""
        self._terminate(signal.SIGKILL)
        self.start(timeout)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _forget(self) -> None:
        _running_nodes.discard(self)

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited: {self.log_tail()}")
        return self.answers_ping()

    def answers_ping(self) -> bool:
        """PING over a raw socket (TLS when configured) with a 0.5 s timeout."""
        try:
            with socket.create_connection(self.address, timeout=0.5) as raw:
                if self._tls is None:
                    return self._ping(raw)
                with self._tls.wrap_socket(raw, server_hostname=self.host) as wrapped:
                    return self._ping(wrapped)
        except (OSError, ssl.SSLError):
            return False

    def _ping(self, sock: socket.socket) -> bool:
        if self.password:
            sock.sendall(f"AUTH {self.password}\r\n".encode())
            sock.recv(64)
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


@atexit.register
def _stop_forgotten() -> None:
    for topology in list(_running_topologies):
        topology.stop()
    for node in list(_running_nodes):
        node.kill()
