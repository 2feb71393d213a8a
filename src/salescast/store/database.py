"""Engine and transactions for the store: SQLite or PostgreSQL, safe under concurrent writers.

Past 500 lines on purpose: the batched asynchronous read (`read_scalar_batched`)
shares the per-thread read path's statement cache, disconnect test and
`dispose`, which a second module would have to reach into. If it grows, the
batched reads (`read_scalar_batched`, `_LoopReads` and their helpers) are the
piece to move out, behind a small interface for those three.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import ClauseElement, Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool, PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler

from salescast.store.errors import StoreUnavailableError
from salescast.store.migrations import prepare_schema
from salescast.store.urls import parse_database_url

if TYPE_CHECKING:
    from psycopg import AsyncConnection

logger = logging.getLogger("salescast.store")

T = TypeVar("T")

# SQLSTATEs after which PostgreSQL has rolled the whole transaction back and
# asks the client to run it again: serialization_failure, deadlock_detected.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
_WRITE_ATTEMPTS = 5
# Set on the engine that write transactions run on; the "begin" listener reads it.
_WRITE_OPTION = "salescast_write"
# The application_name of the batched reads' connections (unless the URL names
# one), so that they can be told apart in pg_stat_activity.
BATCHED_READS_APPLICATION = "salescast batched reads"
# The advisory lock key under which schema creation runs ("salescas" in ASCII).
_SCHEMA_LOCK = 0x73616C6573636173
# A primary-key read that takes this long means the store is not answering.
BATCHED_READ_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class BatchedReadStats:
    """Totals of `Database.read_scalar_batched` since the database was made, all loops."""

    requests: int
    queries: int  # statements sent, a second attempt after a lost connection included
    connections: int  # connections opened: one per event loop, plus one per reconnect


class Database:
    """Owns one SQLAlchemy engine; `session()` gives a transaction that commits or rolls back.

    The schema is created on construction (idempotent), so a fresh SQLite file
    or PostgreSQL database is usable at once; a database of an older schema
    version is migrated (`store.migrations`), one of a newer version refused
    (SchemaVersionError).

    Writers: `write(work)` runs a read-modify-write transaction that is safe
    against other processes writing at the same time. On SQLite it starts with
    `BEGIN IMMEDIATE`, so the write lock is taken before the first read: two
    deferred transactions that both read and then both write would fail one of
    them with "database is locked" at once (SQLite cannot wait there, since the
    waiter's snapshot is already stale), whatever the busy timeout. On
    PostgreSQL the callers lock the rows they change in one order (see
    `SalesStore.ingest`), and a transaction that PostgreSQL still rolls back as
    a deadlock or serialization failure is run again, up to 5 times.

    A store that does not answer (PostgreSQL down or restarting, a dropped
    connection, SQLite locked past its busy timeout) raises
    `StoreUnavailableError`, which the API answers with 503. Pooled connections
    are pinged before use, so the first request after a restart reconnects.

    Batched reads (PostgreSQL, `read_scalar_batched`): the hot primary-key reads
    of the event loop, one query for all the keys wanted at the same time, on
    one connection per event loop. That connection is closed when the loop's
    batch task ends: when the loop shuts down (`asyncio.run`, uvicorn and
    anyio cancel the tasks left over) or when `dispose` cancels it.
    """

    def __init__(self, url: str, *, create_schema: bool = True) -> None:
        self.url = url
        self.engine: Engine = _create_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )
        # The hot path (one version read per request) gets its own engine whose
        # connections stay open, one per thread: no pool checkout, no session,
        # no transaction to reset (~15 us instead of ~400 us on SQLite).
        self._read_engine: Engine = _create_engine(url, poolclass=NullPool)
        self._local = threading.local()
        # Each thread's read connection, with its lock and the thread that owns it.
        self._read_connections: list[
            tuple[PoolProxiedConnection, threading.Lock, threading.Thread]
        ] = []
        self._disposed = False
        self._compiled: dict[ClauseElement, SQLCompiler] = {}
        self._read_lock = threading.Lock()
        # A connection still checked out when `dispose` runs (a forecast computed
        # on a worker thread while the app shuts down) goes back to the discarded
        # pool when that work ends, and would stay open until the pool is
        # garbage-collected (psycopg then warns "deleted while still open").
        # Once disposed, a connection is closed as it is checked in.
        event.listen(self.engine, "checkin", self._close_if_disposed)
        self._loop_reads: dict[asyncio.AbstractEventLoop, _LoopReads] = {}
        self._batched = [0, 0, 0]  # requests, queries, connections (BatchedReadStats)
        # A batched version read (connect included) that takes longer fails its
        # callers with StoreUnavailableError (503) and drops the connection.
        self.batched_read_timeout_seconds = BATCHED_READ_TIMEOUT_SECONDS
        if create_schema:
            try:
                self._prepare_schema()
            except BaseException:  # a refused or unreachable store: leave no pool open
                self._read_engine.dispose()
                self.engine.dispose()
                raise

    def _prepare_schema(self) -> None:
        """Create the tables, or migrate an older schema (`store.migrations`)."""
        # BEGIN IMMEDIATE on SQLite (the write option): two processes opening one
        # file at once take turns, so the second finds the schema made (and
        # migrated) instead of adding the same column again.
        schema_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        with _unavailable_as_error(), schema_engine.begin() as conn:
            if self.dialect == "postgresql":
                # Workers starting at once on an empty database would all
                # CREATE TABLE, and all but one fail (a pg_type unique
                # violation): they take turns, and the later ones find the
                # tables made. Released at commit.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
            prepare_schema(conn)

    @property
    def reads_are_local(self) -> bool:
        """``True`` for SQLite: a read is a file read in this process, no network.

        The service's forecast read for an event loop (`aread_forecast`) then
        reads the active version on the loop (about 15 us) instead of awaiting
        the batched read.
        """
        return self._read_engine.dialect.name == "sqlite"

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on normal exit, rolled back on error.

        For reads and for writes that do not read first (one INSERT or UPDATE);
        a transaction that reads and then writes on what it read goes through
        `write`. Raises StoreUnavailableError when the store does not answer.
        """
        with _unavailable_as_error(), self._sessions.begin() as session:
            yield session

    def write(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in one write transaction and commit; return its result.

        `work` may run more than once: PostgreSQL rolls back a transaction it
        picks as a deadlock victim or as a serialization failure, and it is then
        run again from the start (at most 5 times). Anything `work` does outside
        the session must be safe to repeat. Other errors roll back and propagate;
        StoreUnavailableError when the store does not answer.
        """
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with _unavailable_as_error(), self._write_sessions.begin() as session:
                    return work(session)
            except StoreUnavailableError as exc:
                if _sqlstate(exc.__cause__) not in _RETRYABLE_SQLSTATES or (
                    attempt == _WRITE_ATTEMPTS
                ):
                    raise
                logger.info("write transaction rolled back by the database (%s); retrying", exc)
        raise AssertionError("unreachable")  # pragma: no cover  (the loop returns or raises)

    def ping(self) -> None:
        """Raise if the database does not answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def read_scalar(self, statement: ClauseElement, params: dict[str, Any]) -> Any:
        """One value read outside any transaction, on this thread's own open connection.

        For the small primary-key reads done on every request. The statement is
        compiled once per dialect and run on the raw driver connection, in
        autocommit, so every call sees everything committed before it started.
        A connection that fails is dropped. When the failure was a lost
        connection (the database restarted, or closed it), the read is made once
        more on a new connection: it is idempotent, and only the first read after
        a restart meets the dead connection. Raises StoreUnavailableError when the
        store does not answer.
        """
        sql, arguments = self._compiled_statement(statement, params)
        for attempt in (1, 2):
            try:
                row = self._read_row(sql, arguments)
            except _ConnectionLostError as lost:
                if attempt == 1:
                    continue
                raise StoreUnavailableError.of(lost.__cause__) from lost.__cause__
            except self._read_engine.dialect.loaded_dbapi.Error as exc:
                if attempt == 1 and self._is_disconnect(exc):
                    continue
                raise StoreUnavailableError.of(exc) from exc
            return None if row is None else row[0]
        raise AssertionError("unreachable")  # pragma: no cover  (the loop returns or raises)

    def _compiled_statement(self, statement: ClauseElement, params: dict[str, Any]) -> Any:
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = cast(SQLCompiler, statement.compile(dialect=self._read_engine.dialect))
            self._compiled[statement] = compiled
        arguments: Any = compiled.construct_params(params)  # adds the statement's literals
        if compiled.positional:
            arguments = tuple(arguments[name] for name in compiled.positiontup or ())
        return compiled.string, arguments

    async def read_scalar_batched(self, statement: ClauseElement, key: str) -> Any:
        """The value `statement` gives for `key`, read in one query with the other keys
        this event loop wants now; None when it has no row for `key`.

        For the primary-key reads done on every request when reads are not local
        (PostgreSQL only: it runs on psycopg's AsyncConnection); `read_scalar` is
        the synchronous one. `statement` takes one parameter, ``keys`` (a list, e.g.
        ``id = ANY(:keys)``), and returns ``(key, value)`` rows.

        The calls of one event loop join the next batch; one task per loop runs
        the batches one after another, each one query per statement over the
        loop's own connection, in autocommit. A call never joins a batch already
        sent: that query may predate a commit whose response the caller has
        seen, so every answer comes from a query sent after the call began (as
        `read_scalar`, and as decision 0002 requires). A lost connection (server
        restarted, connection terminated) is replaced and the batch, an
        idempotent read, sent once more; otherwise, and when the store does not
        answer, every call of the batch raises StoreUnavailableError. Cancelling
        a call leaves the batch and the other calls alone. RuntimeError after
        `dispose`.
        """
        loop = asyncio.get_running_loop()
        reads = self._loop_reads.get(loop)
        if reads is None or reads.task.done():
            reads = self._start_batches(loop)
        future: asyncio.Future[Any] = loop.create_future()
        reads.pending.setdefault(statement, {}).setdefault(key, []).append(future)
        self._batched[0] += 1
        reads.wake.set()
        return await future

    @property
    def batched_read_stats(self) -> BatchedReadStats:
        """How many batched reads were asked for, and the queries and connections they took."""
        return BatchedReadStats(*self._batched)

    def _start_batches(self, loop: asyncio.AbstractEventLoop) -> _LoopReads:
        if self._disposed:  # a connection opened now would never be closed
            raise RuntimeError("the database was closed (Database.dispose)")
        reads = _LoopReads(asyncio.Event())
        reads.task = loop.create_task(self._run_batches(loop, reads), name="salescast reads")
        self._loop_reads[loop] = reads
        return reads

    async def _run_batches(self, loop: asyncio.AbstractEventLoop, reads: _LoopReads) -> None:
        try:
            while True:
                await reads.wake.wait()
                reads.wake.clear()
                # Taken in one step, before anything is sent: a call made from
                # here on waits for the next batch.
                reads.in_flight, reads.pending = reads.pending, {}
                for statement, waiters in reads.in_flight.items():
                    await self._answer_batch(reads, statement, waiters)
                reads.in_flight = {}
        finally:
            # The loop shuts down or `dispose` cancelled the task. Nothing here
            # suspends, so no call can join between this and the task's end.
            if reads.connection is not None:
                await reads.connection.close()
            for batch in (reads.in_flight, reads.pending):
                for waiters in batch.values():
                    _fail(waiters, lambda: RuntimeError("the batched reads of this loop ended"))
            if self._loop_reads.get(loop) is reads:
                del self._loop_reads[loop]

    async def _answer_batch(
        self, reads: _LoopReads, statement: ClauseElement, waiters: _Waiters
    ) -> None:
        sql, arguments = self._compiled_statement(statement, {"keys": list(waiters)})
        for attempt in (1, 2):
            connection = reads.connection
            try:
                # A store that stops answering (a hung network, a lock held on
                # the table) must not hold every forecast of this loop for ever.
                async with asyncio.timeout(self.batched_read_timeout_seconds):
                    if connection is None:
                        connection = reads.connection = await self._connect_batched()
                    self._batched[1] += 1
                    cursor = await connection.execute(sql, arguments, prepare=True)
                    rows = await cursor.fetchall()
            except TimeoutError:
                await self._drop_batched_connection(reads)
                seconds = self.batched_read_timeout_seconds
                _fail(waiters, _unavailable(TimeoutError(f"no answer within {seconds:g} s")))
            except self._read_engine.dialect.loaded_dbapi.Error as exc:
                lost = reads.connection is not None and (
                    reads.connection.broken or self._is_disconnect(exc)
                )
                await self._drop_batched_connection(reads)
                if attempt == 1 and lost:
                    continue
                _fail(waiters, _unavailable(exc))
            except Exception as exc:  # a defect: the callers see it, the batches go on
                await self._drop_batched_connection(reads)
                _fail(waiters, _same(exc))
            else:
                _answer(waiters, dict(rows))
            return

    async def _connect_batched(self) -> AsyncConnection[Any]:
        import psycopg  # only PostgreSQL stores need it: not imported for SQLite

        _, params = self._read_engine.dialect.create_connect_args(self._read_engine.url)
        params.pop("context", None)  # the sync dialect's adapters; plain types are read here
        params.setdefault("application_name", BATCHED_READS_APPLICATION)
        self._batched[2] += 1
        return await psycopg.AsyncConnection.connect(autocommit=True, **params)

    async def _drop_batched_connection(self, reads: _LoopReads) -> None:
        connection, reads.connection = reads.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    def _read_row(self, sql: str, arguments: Any) -> Any:
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
                    cursor.execute(sql, arguments)
                    return cursor.fetchone()
                finally:
                    cursor.close()
            except Exception as exc:
                # psycopg marks a connection whose socket died `broken`; such an
                # error carries no SQLSTATE, and SQLAlchemy's is_disconnect cannot
                # tell without the connection, so it is read here, before it goes.
                lost = bool(getattr(connection.driver_connection, "broken", False))
                self._local.connection = None
                connection.invalidate()
                if lost:
                    raise _ConnectionLostError(exc) from exc
                raise

    def _is_disconnect(self, exc: Any) -> bool:
        dialect = self._read_engine.dialect
        return bool(dialect.is_disconnect(exc, None, None)) or _sqlstate(exc) in _LOST_SQLSTATES

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
                self._close_connections_of_ended_threads()
                self._read_connections.append((connection, lock, threading.current_thread()))
            self._local.connection = connection
            self._local.lock = lock
        lock_of_thread: threading.Lock = self._local.lock
        return connection, lock_of_thread

    def _close_connections_of_ended_threads(self) -> None:
        # Thread pools end idle threads (anyio's after 10 s) and start new ones
        # under the next burst; without this, every thread that ever read would
        # keep a PostgreSQL connection open until dispose. Called with _read_lock.
        kept = []
        for connection, lock, thread in self._read_connections:
            if thread.is_alive():
                kept.append((connection, lock, thread))
            else:
                with lock:
                    connection.close()
        self._read_connections = kept

    def _close_if_disposed(self, dbapi_connection: Any, _record: Any) -> None:
        if self._disposed and dbapi_connection is not None:
            dbapi_connection.close()

    def dispose(self) -> None:
        """Close every connection. Afterwards `read_scalar` raises RuntimeError; a read
        running on another thread finishes first (it holds its connection's lock).

        The batch task of each event loop is cancelled (on its own loop's thread)
        and closes its connection as it ends; its waiting calls raise RuntimeError.
        """
        self._disposed = True
        for loop, reads in list(self._loop_reads.items()):
            _cancel_batches(loop, reads)
        with self._read_lock:
            connections, self._read_connections = self._read_connections, []
        for conn, lock, _thread in connections:
            with lock:  # waits for a statement running on it in another thread
                self._disposed = True
                conn.close()
        self._disposed = True
        self._read_engine.dispose()
        self.engine.dispose()


_Waiters = dict[str, list["asyncio.Future[Any]"]]


@dataclass(eq=False)
class _LoopReads:
    """The batched reads of one event loop: waiting calls, the batch task, its connection."""

    wake: asyncio.Event
    task: asyncio.Task[None] = field(init=False)
    pending: dict[ClauseElement, _Waiters] = field(default_factory=dict)
    in_flight: dict[ClauseElement, _Waiters] = field(default_factory=dict)
    connection: AsyncConnection[Any] | None = None


def _answer(waiters: _Waiters, values: dict[str, Any]) -> None:
    for key, futures in waiters.items():
        value = values.get(key)
        for future in futures:
            if not future.done():  # else cancelled by its caller meanwhile
                future.set_result(value)


def _fail(waiters: _Waiters, error: Callable[[], BaseException]) -> None:
    # One exception object per caller: each raise adds its own traceback to it.
    for futures in waiters.values():
        for future in futures:
            if not future.done():
                future.set_exception(error())


def _same(exc: BaseException) -> Callable[[], BaseException]:
    return lambda: exc


def _unavailable(exc: BaseException) -> Callable[[], BaseException]:
    def error() -> BaseException:
        unavailable = StoreUnavailableError.of(exc)
        unavailable.__cause__ = exc
        return unavailable

    return error


def _cancel_batches(loop: asyncio.AbstractEventLoop, reads: _LoopReads) -> None:
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is loop:
        reads.task.cancel()
        return
    try:
        loop.call_soon_threadsafe(reads.task.cancel)
    except RuntimeError:  # the loop is closed: its task will never run again
        if reads.connection is not None:
            reads.connection.pgconn.finish()


# Connection exceptions (class 08) and the server shutting down or restarting
# (57P01-57P03): the connection is gone, nothing of a read was done.
_LOST_SQLSTATES = frozenset({"08000", "08003", "08006", "57P01", "57P02", "57P03"})


class _ConnectionLostError(Exception):
    """A read failed because its connection died (the driver says so); safe to make again."""


@contextmanager
def _unavailable_as_error() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailableError.of(exc.orig) from exc
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise StoreUnavailableError.of(exc.orig) from exc


def _sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a psycopg error, bare or wrapped by SQLAlchemy; None for others."""
    if isinstance(exc, DBAPIError):
        exc = exc.orig
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else None


def _create_engine(url: str, **options: Any) -> Engine:
    parsed = parse_database_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread off: `dispose` closes the per-thread read connections
    # from whichever thread shuts the service down.
    engine = create_engine(
        parsed, connect_args={"timeout": 30, "check_same_thread": False}, **options
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(conn: Connection) -> None:
    # The driver's own implicit BEGIN is off (isolation_level=None in
    # _sqlite_pragmas); SQLAlchemy's recipe for controlling it is to emit it here.
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # sqlite3 would otherwise open transactions itself, deferred and only before
    # DML, which leaves no way to ask for BEGIN IMMEDIATE (see Database.write).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a writer commits; NORMAL sync is durable
    # across process crashes in WAL mode (only an OS crash may lose the last commit).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
