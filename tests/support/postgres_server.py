"""A real PostgreSQL server for tests: own data dir, free loopback port, stopped by pid."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from tests.support.redis_server import free_port

DEBIAN_POSTGRESQL = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"
# Durability is worth nothing to a throw-away test cluster: commits and
# CREATE DATABASE ... TEMPLATE skip their fsyncs. The default 100 connections
# are too few for a two-worker server's pools plus a test's own services.
TEST_SPEED_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}

# Servers started and not yet stopped; a safety net for a test that forgets
# to stop one (they are stopped when the interpreter exits).
_running: set[PostgresServer] = set()


def find_bin_dir() -> Path:
    """The newest Debian /usr/lib/postgresql/<N>/bin, else the directory of `initdb` on PATH."""
    versions = [
        path / "bin"
        for path in DEBIAN_POSTGRESQL.glob("*")
        if path.name.isdigit() and (path / "bin" / "initdb").exists()
    ]
    if versions:
        return max(versions, key=lambda bin_dir: int(bin_dir.parent.name))
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("no PostgreSQL found (initdb); `make postgresql` installs it")
    return Path(initdb).resolve().parent


class PostgresServer:
    """One PostgreSQL postmaster the test controls, on 127.0.0.1 with trust auth.

    ``start`` runs ``initdb`` on first use, then the ``postgres`` binary itself
    (no pg_ctl, so ``pid`` is the postmaster's) and waits until it accepts
    connections. ``stop`` (fast shutdown, then SIGKILL; removes the data),
    ``restart`` (fast shutdown and start on the same port, data kept), ``kill``
    (SIGKILL to the postmaster and its backends: the crash case). Databases
    come and go with ``create_database`` / ``drop_database``. As root, initdb
    and the server run as the ``postgres`` OS user, since PostgreSQL refuses
    to run as root. Use as a context manager or call ``stop``.
    """

    def __init__(self, port: int | None = None, *, settings: dict[str, str] | None = None) -> None:
        self.port = port if port is not None else free_port()
        # Server settings over the tests' fast, non-durable ones (the benchmarks
        # measure with PostgreSQL's durable defaults).
        self.settings = {**TEST_SPEED_SETTINGS, **(settings or {})}
        self.host = "127.0.0.1"
        self.user = "postgres"
        self._bin = find_bin_dir()
        self._dir = Path(tempfile.mkdtemp(prefix="salescast-postgres-"))
        self._data = self._dir / "data"
        self._log = self._dir / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str = "postgres") -> str:
        """``postgresql://postgres@127.0.0.1:<port>/<dbname>``."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid (also its process group id) while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """Start the server (after initdb, the first time) and wait until it accepts connections."""
        if self._process is not None:
            raise RuntimeError("already running")
        try:
            if not (self._data / "PG_VERSION").exists():
                self._initdb()
            self._spawn()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT: backends end, no waiting for clients), then remove the data."""
        self._shutdown()
        _running.discard(self)
        shutil.rmtree(self._dir, ignore_errors=True)

    def restart(self, timeout: float = 30.0) -> None:
        """Fast shutdown if running, then start again on the same port with the same data."""
        self._shutdown()
        self.start(timeout)

    def kill(self) -> None:
        """SIGKILL to the postmaster and every backend: no checkpoint, clients cut mid-query.

        The next ``start`` runs crash recovery from the WAL.
        """
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        self._process = None
        self._wait_group_gone(process.pid)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database `name` (a copy of `template` when given) and return its URL.

        A template must have no open connection while it is copied.
        """
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self._execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, ending the sessions still connected to it."""
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def log_text(self) -> str:
        """The server's log so far, for failure messages."""
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _initdb(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self._dir, SERVER_USER, SERVER_USER)
        result = subprocess.run(
            [
                str(self._bin / "initdb"),
                "-D", str(self._data),
                "-U", self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",  # C collation: the same sort order on every machine
                "--no-sync",
            ],
            capture_output=True, env=_server_env(), check=False, **_as_server_user(),
        )  # fmt: skip
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise RuntimeError(f"initdb failed ({result.returncode}): {output[-2000:]}")

    def _spawn(self) -> None:
        args = [
            str(self._bin / "postgres"),
            "-D", str(self._data),
            "-p", str(self.port),
            "-k", str(self._dir),  # unix socket here, not in the system's /var/run/postgresql
            "-c", f"listen_addresses={self.host}",
        ]  # fmt: skip
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        with self._log.open("ab") as log:
            # Its own session: `kill` reaches the backends too, whose leftover
            # shared memory would otherwise stop the next start.
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=_server_env(),
                start_new_session=True, **_as_server_user(),
            )  # fmt: skip
        _running.add(self)

    def _shutdown(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._process = None
        self._wait_group_gone(process.pid)

    def _wait_group_gone(self, group: int, timeout: float = 10.0) -> None:
        # A backend still attached to the old shared memory makes the next
        # postmaster refuse to start ("pre-existing shared memory block is still in use").
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_text()[-2000:]}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise RuntimeError(f"postgres on port {self.port} did not answer in {timeout} s")

    def _execute(self, statement: sql.Composable) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)


def _as_server_user() -> dict[str, object]:
    """Popen arguments that run the child as the postgres OS user when we are root.

    The user switch happens in the child before exec, so the pid Popen knows is
    the server's own (`su -c` would put a shell or su itself in between).
    """
    if os.geteuid() != 0:
        return {}
    return {"user": SERVER_USER, "group": SERVER_USER, "extra_groups": []}


def _server_env() -> dict[str, str]:
    # A developer's PGDATA, PGPORT, PGHOST... must not steer the test server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


@atexit.register
def _stop_forgotten_servers() -> None:
    for server in list(_running):
        server.stop()
