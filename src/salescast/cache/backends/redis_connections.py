"""The connections under RedisBackend: pools, the hit path's own stacks, fork safety.

Both faces of the Redis commands (``_async/redis_commands.py`` and the
generated ``_sync/redis_commands.py``) stand on this base: it owns the sync
pool, one asyncio client per event loop, the hit path's stacks of kept
connections (see ``RedisBackend``'s docstring for why they exist), error
mapping and the call counter. It sends no command itself.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from salescast.cache.backends.base import StoredEntry
from salescast.cache.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    PoolExhaustedError,
)

# redis-py's messages when no connection frees up in time (BlockingConnectionPool)
# or none is left to make (ConnectionPool, under Sentinel).
_POOL_EXHAUSTED = ("No connection available.", "Too many connections")


@dataclass
class HitConnections:
    """A pool and the hit path's stack of connections taken from it and kept.

    One for the threads of the process, one per event loop. ``lock`` makes
    the bound check and the append one step across threads (an event loop's
    stack never meets another thread, and no ``await`` falls in between, so
    there it is uncontended). ``pool`` is a redis-py sync or asyncio pool.
    """

    pool: Any
    idle: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def release_all(self, release: Callable[[Any], object]) -> None:
        """Hand every kept connection to ``release`` (the pool's, which counts them as in
        use until then), emptying the stack."""
        while True:
            try:
                connection = self.idle.pop()
            except IndexError:
                return
            release(connection)


def idle_limit(max_connections: int) -> int:
    """How many connections the hit path may keep of a pool of ``max_connections``: at
    most half, and never the last two (one is the invalidation subscriber's, one
    serves writes and leases)."""
    return max(0, min(max_connections // 2, max_connections - 2))


@dataclass(frozen=True)
class _LoopClient:
    """The asyncio client of one event loop and its hit connections."""

    client: redis.asyncio.Redis
    hits: HitConnections


class RedisConnections:
    """Connections and error mapping for ``RedisBackend`` (see its docstring)."""

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
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        if url is None:
            scheme = "rediss" if ssl else "redis"
            url = f"{scheme}://{quote(host, safe='')}:{port}/{db}"
        self.url = url
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "max_connections": max_connections,
            "protocol": 2,
            "health_check_interval": 0,
        }
        if password is not None:
            self._options["password"] = password
        if username is not None:
            self._options["username"] = username
        self._options.update(
            tls_options(url, ca_certs=ssl_ca_certs, certfile=ssl_certfile, keyfile=ssl_keyfile)
        )
        self._pool = self._new_pool()
        self._sync_client = redis.Redis(connection_pool=self._pool)
        self._idle_limit = idle_limit(max_connections)
        self._hits = HitConnections(self._pool)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        forget_connections_after_fork(self)
        self._calls = 0
        self._calls_lock = threading.Lock()

    # -- pools (a topology that finds its server another way overrides these) --

    def _new_pool(self) -> Any:
        """The sync pool: blocking, waiting at most the connect timeout for a free
        connection, no retries (the breaker decides when to try again)."""
        return redis.BlockingConnectionPool.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            timeout=self._options["socket_connect_timeout"],
            **self._options,
        )

    def _new_loop_pool(self) -> Any:
        """As :meth:`_new_pool`, for the running event loop."""
        return redis.asyncio.BlockingConnectionPool.from_url(
            self.url,
            retry=AsyncRetry(NoBackoff(), 0),
            timeout=self._options["socket_connect_timeout"],
            **self._options,
        )

    # -- the asyncio clients (the sync face uses _sync_client and _hits) ------

    def _aclient(self) -> redis.asyncio.Redis:
        """The asyncio client of the running event loop, made on first use."""
        return self._loop_client().client

    def _aconnections(self) -> HitConnections:
        """The running loop's pool and its stack of kept hit connections."""
        return self._loop_client().hits

    def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        loop_client = self._async.get(loop)
        if loop_client is None:
            pool = self._new_loop_pool()
            client = redis.asyncio.Redis(connection_pool=pool)
            loop_client = _LoopClient(client, HitConnections(pool))
            self._async[loop] = loop_client
        return loop_client

    def _close_sync(self) -> None:
        """Give kept connections back to the pool, then disconnect it."""
        self._hits.release_all(self._pool.release)
        self._sync_client.close()
        self._pool.disconnect()

    async def _close_loop(self) -> None:
        """Close the running loop's client and pool, if one was made."""
        loop_client = self._async.pop(asyncio.get_running_loop(), None)
        if loop_client is not None:
            loop_client.hits.idle.clear()
            await loop_client.client.aclose(close_connection_pool=True)

    def _forget_inherited_connections(self) -> None:
        # In a forked child: the stacked sockets are the parent's, and another
        # thread may have held the stack's lock at the fork.
        self._hits = HitConnections(self._pool)
        self._async = weakref.WeakKeyDictionary()

    # -- counting and errors ------------------------------------------------

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
        if isinstance(exc, redis.ConnectionError) and str(exc) in _POOL_EXHAUSTED:
            return PoolExhaustedError(f"all {self._options['max_connections']} busy")
        if isinstance(exc, redis.TimeoutError | TimeoutError):
            return BackendTimeoutError(f"{type(exc).__name__}: {exc}")
        return BackendUnavailableError(f"{type(exc).__name__}: {exc}")


def url_options(url: str, *names: str) -> dict[str, Any]:
    """The parts of ``url`` other than the address (``username``, ``password``, ``db``)
    that it gives, as redis-py keyword arguments: Sentinel and Cluster take their
    addresses elsewhere and only these from the URL."""
    parsed = parse_url(url)  # type: ignore[no-untyped-call]
    return {name: parsed[name] for name in names if parsed.get(name) not in (None, "")}


def tls_options(
    url: str, *, ca_certs: str | None, certfile: str | None, keyfile: str | None
) -> dict[str, Any]:
    """redis-py's TLS options for ``url``; ``ValueError`` when they cannot apply.

    Certificate files only make sense on a TLS connection, so with any of
    them the URL must be ``rediss://``: a ``redis://`` URL with a CA file is
    refused rather than silently connecting in clear text. A client
    certificate needs its key.
    """
    given = {"ssl_ca_certs": ca_certs, "ssl_certfile": certfile, "ssl_keyfile": keyfile}
    options = {name: value for name, value in given.items() if value}
    if not options:
        return {}
    if not url.startswith("rediss://"):
        raise ValueError(
            "TLS certificate files are set but the Redis URL is not rediss:// "
            "(use rediss:// to connect with TLS)"
        )
    if bool(certfile) != bool(keyfile):
        raise ValueError("a TLS client certificate needs both the certificate and its key file")
    for name, path in options.items():
        if not os.path.isfile(path):
            raise ValueError(f"TLS file {path!r} ({name}) does not exist")
    return {**options, "ssl_cert_reqs": "required"}


def closed_connection(exc: redis.ConnectionError) -> bool:
    """Whether ``exc`` says the socket is gone (closed, reset, broken pipe), not that
    Redis answered with a refusal (``BusyLoadingError``, authentication errors)."""
    return type(exc) is redis.ConnectionError


class _ForgetsAfterFork(Protocol):
    def _forget_inherited_connections(self) -> None: ...


_BACKENDS: weakref.WeakSet[_ForgetsAfterFork] = weakref.WeakSet()


def forget_connections_after_fork(backend: _ForgetsAfterFork) -> None:
    """Have ``backend._forget_inherited_connections()`` called in every forked child
    (the hit path's stacks hold the parent's sockets; redis-py's pools notice a new
    pid themselves, a stack does not)."""
    _BACKENDS.add(backend)


def _after_fork_in_child() -> None:
    for backend in list(_BACKENDS):
        backend._forget_inherited_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


# Compare-and-delete: only the holder of the token may release a lease, so a
# slow owner whose lease already expired cannot delete its successor's lease.
RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

SCAN_BATCH = 500


def stored_entry(value: bytes | None, pttl: int) -> StoredEntry | None:
    """A GET + PTTL reply as a backend entry."""
    if value is None:
        return None
    if pttl == -1:
        return StoredEntry(value, None)
    # -2: the key expired between GET and PTTL. The value is still good for
    # this caller, but with no time left it must not be copied into L1.
    return StoredEntry(value, max(pttl, 0) / 1000.0)


def millis(seconds: float) -> int:
    """A TTL in whole milliseconds for PX, never 0 (which Redis refuses)."""
    return max(1, round(seconds * 1000))
