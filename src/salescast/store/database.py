"""Engine and session factory for the store, with the SQLite settings a server needs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ClauseElement, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool, PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler

from salescast.store.schema import Base


class Database:
    """Owns one SQLAlchemy engine; `session()` gives a transaction that commits or rolls back.

    The schema is created on construction (idempotent), so a fresh SQLite file
    is usable at once. SQLite runs in WAL mode with a busy timeout so that the
    server's readers and a concurrent `salescast ingest` or training process do
    not fail with "database is locked".
    """

    def __init__(self, url: str, *, create_schema: bool = True) -> None:
        self.url = url
        self.engine: Engine = _create_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # The hot path (one version read per request) gets its own engine whose
        # connections stay open, one per thread: no pool checkout, no session,
        # no transaction to reset (~15 us instead of ~400 us on SQLite).
        self._read_engine: Engine = _create_engine(url, poolclass=NullPool)
        self._local = threading.local()
        self._read_connections: list[tuple[PoolProxiedConnection, threading.Lock]] = []
        self._disposed = False
        self._compiled: dict[ClauseElement, SQLCompiler] = {}
        self._read_lock = threading.Lock()
        if create_schema:
            Base.metadata.create_all(self.engine)

    @property
    def reads_are_local(self) -> bool:
        """``True`` for SQLite: a read is a file read in this process, no network.

        The HTTP forecast route then reads the active version on the event
        loop (about 15 us) instead of taking a thread for it.
        """
        return self._read_engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on normal exit, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def ping(self) -> None:
        """Raise if the database does not answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def read_scalar(self, statement: ClauseElement, params: dict[str, Any]) -> Any:
        """One value read outside any transaction, on this thread's own open connection.

        For the small primary-key reads done on every request. The statement is
        compiled once per dialect and run on the raw driver connection, in
        autocommit, so every call sees everything committed before it started.
        A connection that fails is dropped and the error raised.
        """
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = cast(SQLCompiler, statement.compile(dialect=self._read_engine.dialect))
            self._compiled[statement] = compiled
        arguments: Any = compiled.construct_params(params)  # adds the statement's literals
        if compiled.positional:
            arguments = tuple(arguments[name] for name in compiled.positiontup or ())
        connection, lock = self._thread_connection()
        # `dispose` closes this connection from another thread; the lock keeps it
        # from doing so mid-statement, which crashed the process (a segfault in
        # sqlite3) when a training job still read while the app shut down.
        with lock:
            if self._disposed:
                raise RuntimeError("the database was closed (Database.dispose)")
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(compiled.string, arguments)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            except Exception:
                self._local.connection = None
                connection.invalidate()
                raise
        return None if row is None else row[0]

    def _thread_connection(self) -> tuple[PoolProxiedConnection, threading.Lock]:
        connection: PoolProxiedConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._disposed:  # a connection opened now would never be closed
                raise RuntimeError("the database was closed (Database.dispose)")
            connection = self._read_engine.raw_connection()
            if self._read_engine.dialect.name != "sqlite":
                # sqlite3 opens no transaction for a SELECT; other drivers do.
                connection.driver_connection.autocommit = True  # type: ignore[union-attr]
            lock = threading.Lock()
            with self._read_lock:
                self._read_connections.append((connection, lock))
            self._local.connection = connection
            self._local.lock = lock
        lock_of_thread: threading.Lock = self._local.lock
        return connection, lock_of_thread

    def dispose(self) -> None:
        """Close every connection. Afterwards `read_scalar` raises RuntimeError; a read
        running on another thread finishes first (it holds its connection's lock)."""
        with self._read_lock:
            connections, self._read_connections = self._read_connections, []
        for conn, lock in connections:
            with lock:  # waits for a statement running on it in another thread
                self._disposed = True
                conn.close()
        self._disposed = True
        self._read_engine.dispose()
        self.engine.dispose()


def _create_engine(url: str, **options: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread off: `dispose` closes the per-thread read connections
    # from whichever thread shuts the service down.
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **options)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a writer commits; NORMAL sync is durable
    # across process crashes in WAL mode (only an OS crash may lose the last commit).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
