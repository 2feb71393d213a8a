"""L2: Redis through redis-py (hiredis parser), sync and asyncio, fail-fast by default."""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import quote

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from salescast.cache.backends.base import StoredEntry
from salescast.cache.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    PoolExhaustedError,
)

# Compare-and-delete: only the holder of the token may release a lease, so a
# slow owner whose lease already expired cannot delete its successor's lease.
_RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

_SCAN_BATCH = 500
# redis-py's BlockingConnectionPool message when no connection frees up in time.
_POOL_EXHAUSTED = "No connection available."


def escape_glob(text: str) -> str:
    """Escape ``text`` so a Redis ``MATCH`` pattern takes it literally."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class RedisBackend:
    """Redis as a ``CacheBackend`` (and ``AsyncCacheBackend``).

    **Timeouts are short on purpose.** redis-py waits 5 s for a socket and
    retries ten times with back-off; for a cache that is the wrong trade: a
    value we cannot fetch in a quarter second is cheaper to recompute or to
    serve from L1 than to wait for. So ``socket_timeout`` and
    ``socket_connect_timeout`` default to 0.25 s and retries are switched off
    (``Retry(NoBackoff(), 0)``); the circuit breaker in the tiered cache
    decides when to try again, not the client.

    RESP2 is used (``protocol=2``): redis-py 8 defaults to RESP3, which adds
    push-message and maintenance-notification handling this cache does not
    need; RESP2 behaves the same on every Redis and Redis-compatible server.

    Connections come from a blocking pool of ``max_connections`` (default 50)
    that waits at most ``socket_connect_timeout`` for a free connection, so a
    burst of callers queues briefly instead of failing as if Redis were down.
    The asyncio client is created lazily, one per event loop.

    **The hit path keeps its connections.** redis-py's pools check every
    connection they hand out (a non-blocking read for stale data, plus
    locks and metrics hooks): about 18 us per call from threads and 35 us
    from asyncio on this project's machine, more than the rest of an L2 hit.
    ``get`` and ``get_value`` (and their asyncio twins) therefore keep the
    connections they used in a small stack of their own, up to half of
    ``max_connections`` and never its last two, and take from it without
    the check. What the check guards against cannot happen to these
    connections: they go back on the stack only after every reply was read,
    and any error or cancellation disconnects the connection and returns it
    to the pool. A connection the server closed while it sat on the stack
    (Redis restarted) fails at once on its next use; that read is then made
    once more on a connection from the pool, which reconnects. Nothing else
    is repeated: not a timeout, not a refusal such as ``LOADING``.
    Connections on the stack stay counted as in use by the pool, so
    ``max_connections`` still bounds the total, and the rest of the pool
    serves everything else (writes, leases, the invalidation subscriber,
    and hit reads beyond the stack). A forked child forgets the stack it
    inherited (its sockets belong to the parent).

    Every failure is raised as ``BackendUnavailableError``. ``calls`` counts
    operations that reached for the network, which tests use to prove that
    an open breaker does no I/O.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        username: str | None = None,
        ssl: bool = False,
        socket_timeout: float = 0.25,
        socket_connect_timeout: float = 0.25,
        max_connections: int = 50,
    ) -> None:
        if url is None:
            scheme = "rediss" if ssl else "redis"
            url = f"{scheme}://{quote(host, safe='')}:{port}/{db}"
        self.url = url
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "max_connections": max_connections,
            "timeout": socket_connect_timeout,
            "protocol": 2,
            "health_check_interval": 0,
        }
        if password is not None:
            self._options["password"] = password
        if username is not None:
            self._options["username"] = username
        self._pool = redis.BlockingConnectionPool.from_url(
            url, retry=Retry(NoBackoff(), 0), **self._options
        )
        self._client = redis.Redis(connection_pool=self._pool)
        self._release_script = self._client.register_script(_RELEASE_IF_OWNER)
        # The hit path's own connections (see the class docstring). list.pop
        # and list.append are atomic, so threads share the stack without a lock.
        # At most half the pool, and never the last two connections: one is
        # the invalidation subscriber's, one serves writes and leases.
        self._idle_limit = max(0, min(max_connections // 2, max_connections - 2))
        self._idle: list[redis.Connection] = []
        self._idle_lock = threading.Lock()
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        _BACKENDS.add(self)
        self._calls = 0
        self._calls_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBackend:
        """Build from ``redis://[user:password@]host:port/db`` or ``rediss://`` (TLS)."""
        return cls(url, **options)

    @property
    def calls(self) -> int:
        """Operations that went to the network since creation."""
        return self._calls

    @property
    def client(self) -> redis.Redis:
        """The synchronous redis-py client (for pub/sub and diagnostics)."""
        return self._client

    @property
    def address(self) -> str:
        """``host:port/db`` without credentials, for logs and health."""
        kwargs = self._pool.connection_kwargs
        return f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"

    # -- synchronous CacheBackend -------------------------------------------

    def get(self, key: str) -> StoredEntry | None:
        """Value and remaining TTL in one round trip (GET + PTTL); ``None`` on a miss."""
        # The hot path of an L2 hit: no context manager, the same error mapping.
        self._count_call()
        try:
            value, pttl = self._round_trip((("GET", key), ("PTTL", key)))
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return _entry(value, int(pttl))

    def get_value(self, key: str) -> bytes | None:
        """GET alone, for a reader that has no use for the TTL (a cache without L1)."""
        self._count_call()
        try:
            (value,) = self._round_trip((("GET", key),))
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return value  # type: ignore[no-any-return]

    def _round_trip(self, commands: tuple[tuple[str, str], ...]) -> list[Any]:
        # The commands written together on one connection, the replies read
        # in order: the single round trip of a pipeline without the tens of
        # microseconds of Python a redis-py pipeline object adds (command
        # stack, hooks, callbacks), which made an L2 hit cost well over a GET.
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._pool.get_connection()  # type: ignore[no-untyped-call]
        else:
            try:
                return self._exchange(connection, commands)
            except redis.ConnectionError as exc:
                if not _closed_connection(exc):
                    raise
            # Closed while it waited on the stack: once more, from the pool.
            connection = self._pool.get_connection()  # type: ignore[no-untyped-call]
        return self._exchange(connection, commands)

    def _exchange(
        self, connection: redis.Connection, commands: tuple[tuple[str, str], ...]
    ) -> list[Any]:
        try:
            packed = connection.pack_commands(commands)  # type: ignore[no-untyped-call]
            connection.send_packed_command(packed)  # type: ignore[no-untyped-call]
            replies = [connection.read_response() for _ in commands]
        except BaseException:
            # A reply may still be unread: never hand this socket to another caller.
            try:
                connection.disconnect()  # type: ignore[no-untyped-call]
            finally:
                self._pool.release(connection)  # type: ignore[no-untyped-call]
            raise
        with self._idle_lock:  # the check and the append as one step across threads
            keep = len(self._idle) < self._idle_limit
            if keep:
                self._idle.append(connection)
        if not keep:
            self._pool.release(connection)  # type: ignore[no-untyped-call]
        return replies

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """SET with PX; a TTL ``<= 0`` deletes instead."""
        with self._io():
            if ttl is None:
                self._client.set(key, value)
            elif ttl <= 0:
                self._client.unlink(key)
            else:
                self._client.set(key, value, px=_millis(ttl))

    def delete(self, key: str) -> bool:
        """UNLINK (frees memory off the main thread)."""
        with self._io():
            return bool(self._client.unlink(key))

    def exists(self, key: str) -> bool:
        """EXISTS."""
        with self._io():
            return bool(self._client.exists(key))

    def expire(self, key: str, ttl: float) -> bool:
        """PEXPIRE; ``False`` when the key is absent."""
        with self._io():
            return bool(self._client.pexpire(key, _millis(ttl)))

    def incr(self, key: str) -> int:
        """INCR."""
        with self._io():
            return int(self._client.incr(key))

    def get_counter(self, key: str) -> int:
        """GET of a counter; absent reads 0."""
        with self._io():
            value = self._client.get(key)
        return int(value) if value is not None else 0

    def delete_prefix(self, prefix: str) -> int:
        """SCAN + UNLINK of ``prefix*`` in batches; never blocks Redis on one big command."""
        return self.delete_matching(escape_glob(prefix) + "*")

    def delete_matching(self, pattern: str, *, keep: Callable[[bytes], bool] | None = None) -> int:
        """SCAN + UNLINK of keys matching a glob ``pattern`` (caller escapes literals).

        Keys for which ``keep(key)`` is true are left alone.
        """
        removed = 0
        with self._io():
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
                if keep is not None and keep(key):
                    continue
                batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    removed += int(self._client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(self._client.unlink(*batch))
        return removed

    def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """SET NX PX: ``True`` when this call created the key."""
        with self._io():
            return bool(self._client.set(key, value, nx=True, px=_millis(ttl)))

    def delete_if_equals(self, key: str, value: bytes) -> bool:
        """Delete ``key`` only while it still holds ``value`` (atomic, Lua)."""
        with self._io():
            return bool(self._release_script(keys=[key], args=[value]))

    def publish(self, channel: str, message: bytes) -> int:
        """PUBLISH; returns how many subscribers received it."""
        with self._io():
            return int(self._client.publish(channel, message))

    def ping(self) -> bool:
        """PING."""
        with self._io():
            return bool(self._client.ping())

    def server_info(self) -> dict[str, Any]:
        """INFO server (version, uptime) for health reports."""
        with self._io():
            info: dict[str, Any] = self._client.info("server")
        return info

    def close(self) -> None:
        """Disconnect the synchronous pool (asyncio clients close with ``aclose``)."""
        while True:  # back to the pool, which counts them as in use until then
            try:
                connection = self._idle.pop()
            except IndexError:
                break
            self._pool.release(connection)  # type: ignore[no-untyped-call]
        self._client.close()
        self._pool.disconnect()

    # -- asyncio AsyncCacheBackend ------------------------------------------

    async def aget(self, key: str) -> StoredEntry | None:
        """As :meth:`get`, on the asyncio client of the running loop."""
        self._count_call()
        try:
            value, pttl = await self._around_trip((("GET", key), ("PTTL", key)))
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return _entry(value, int(pttl))

    async def aget_value(self, key: str) -> bytes | None:
        """As :meth:`get_value`."""
        self._count_call()
        try:
            (value,) = await self._around_trip((("GET", key),))
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return value  # type: ignore[no-any-return]

    async def _around_trip(self, commands: tuple[tuple[str, str], ...]) -> list[Any]:
        # As _round_trip, on the connections of the running loop.
        loop_client = self._loop_client()
        try:
            connection = loop_client.idle.pop()
        except IndexError:
            connection = await loop_client.pool.get_connection()  # type: ignore[no-untyped-call]
        else:
            try:
                return await self._aexchange(loop_client, connection, commands)
            except redis.ConnectionError as exc:
                if not _closed_connection(exc):
                    raise
            # Closed while it waited on the stack: once more, from the pool.
            connection = await loop_client.pool.get_connection()  # type: ignore[no-untyped-call]
        return await self._aexchange(loop_client, connection, commands)

    async def _aexchange(
        self,
        loop_client: _LoopClient,
        connection: redis.asyncio.Connection,
        commands: tuple[tuple[str, str], ...],
    ) -> list[Any]:
        try:
            await connection.send_packed_command(connection.pack_commands(commands))
            replies = [await connection.read_response() for _ in commands]
        except BaseException:
            # Cancelled or failed between the replies: never reuse this socket.
            try:
                await connection.disconnect()
            finally:
                await loop_client.pool.release(connection)
            raise
        if len(loop_client.idle) < self._idle_limit:  # one step: no await in between
            loop_client.idle.append(connection)
        else:
            await loop_client.pool.release(connection)
        return replies

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """As :meth:`set`."""
        with self._io():
            client = self._aclient()
            if ttl is None:
                await client.set(key, value)
            elif ttl <= 0:
                await client.unlink(key)
            else:
                await client.set(key, value, px=_millis(ttl))

    async def adelete(self, key: str) -> bool:
        """As :meth:`delete`."""
        with self._io():
            return bool(await self._aclient().unlink(key))

    async def aexists(self, key: str) -> bool:
        """As :meth:`exists`."""
        with self._io():
            return bool(await self._aclient().exists(key))

    async def aget_counter(self, key: str) -> int:
        """As :meth:`get_counter`."""
        with self._io():
            value = await self._aclient().get(key)
        return int(value) if value is not None else 0

    async def aset_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """As :meth:`set_if_absent`."""
        with self._io():
            return bool(await self._aclient().set(key, value, nx=True, px=_millis(ttl)))

    async def adelete_if_equals(self, key: str, value: bytes) -> bool:
        """As :meth:`delete_if_equals`."""
        with self._io():
            return bool(await self._aclient().eval(_RELEASE_IF_OWNER, 1, key, value))

    async def apublish(self, channel: str, message: bytes) -> int:
        """As :meth:`publish`."""
        with self._io():
            return int(await self._aclient().publish(channel, message))

    async def aclose(self) -> None:
        """Close the asyncio client of the running event loop, if one was made."""
        loop_client = self._async.pop(asyncio.get_running_loop(), None)
        if loop_client is not None:
            loop_client.idle.clear()
            await loop_client.client.aclose(close_connection_pool=True)

    def _aclient(self) -> redis.asyncio.Redis:
        return self._loop_client().client

    def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        loop_client = self._async.get(loop)
        if loop_client is None:
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url, retry=AsyncRetry(NoBackoff(), 0), **self._options
            )
            loop_client = _LoopClient(redis.asyncio.Redis(connection_pool=pool), pool, [])
            self._async[loop] = loop_client
        return loop_client

    def _forget_inherited_connections(self) -> None:
        # In a forked child: the stacked sockets are the parent's.
        self._idle = []
        self._idle_lock = threading.Lock()  # another thread may have held it at the fork
        self._async = weakref.WeakKeyDictionary()

    @contextmanager
    def _io(self) -> Iterator[None]:
        self._count_call()
        try:
            yield
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _count_call(self) -> None:
        with self._calls_lock:
            self._calls += 1

    def _unavailable(self, exc: Exception) -> BackendUnavailableError:
        if isinstance(exc, redis.ConnectionError) and str(exc) == _POOL_EXHAUSTED:
            return PoolExhaustedError(f"all {self._options['max_connections']} busy")
        if isinstance(exc, redis.TimeoutError | TimeoutError):
            return BackendTimeoutError(f"{type(exc).__name__}: {exc}")
        return BackendUnavailableError(f"{type(exc).__name__}: {exc}")


def _closed_connection(exc: redis.ConnectionError) -> bool:
    """Whether ``exc`` says the socket is gone (closed, reset, broken pipe), not that
    Redis answered with a refusal (``BusyLoadingError``, authentication errors)."""
    return type(exc) is redis.ConnectionError


class _LoopClient(NamedTuple):
    """The asyncio client of one event loop, its pool and the hit path's stack."""

    client: redis.asyncio.Redis
    pool: redis.asyncio.BlockingConnectionPool
    idle: list[redis.asyncio.Connection]


_BACKENDS: weakref.WeakSet[RedisBackend] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for backend in list(_BACKENDS):
        backend._forget_inherited_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _entry(value: bytes | None, pttl: int) -> StoredEntry | None:
    if value is None:
        return None
    if pttl == -1:
        return StoredEntry(value, None)
    # -2: the key expired between GET and PTTL. The value is still good for
    # this caller, but with no time left it must not be copied into L1.
    return StoredEntry(value, max(pttl, 0) / 1000.0)


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))
