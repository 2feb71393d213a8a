"""L2: Redis through redis-py (hiredis parser), sync and asyncio, fail-fast by default."""

from __future__ import annotations

from typing import Any

from salescast.cache._async.redis_commands import AsyncRedisCommands
from salescast.cache._sync.redis_commands import RedisCommands
from salescast.cache.health import NodeReport, TopologyReport
from salescast.cache.keys import escape_glob

__all__ = ["RedisBackend", "escape_glob"]


class RedisBackend(RedisCommands, AsyncRedisCommands):
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

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBackend:
        """Build from ``redis://[user:password@]host:port/db`` or ``rediss://`` (TLS)."""
        return cls(url, **options)

    @property
    def calls(self) -> int:
        """Operations that went to the network since creation."""
        return self._calls

    @property
    def client(self) -> Any:
        """The synchronous redis-py client (for pub/sub and diagnostics)."""
        return self._sync_client

    @property
    def topology(self) -> str:
        """``single``: one server (possibly behind a proxy)."""
        return "single"

    def describe(self) -> TopologyReport:
        """INFO server and replication of the server writes go to (one round trip)."""
        with self._io():
            pipe = self._sync_client.pipeline(transaction=False)
            pipe.info("server")
            pipe.info("replication")
            server, replication = pipe.execute()
        role = replication.get("role")
        address = self.address
        return TopologyReport(
            topology=self.topology,
            address=address,
            version=server.get("redis_version"),
            writable=role == "master",
            nodes=(NodeReport(address, role, answers=True),),
        )

    @property
    def address(self) -> str:
        """``host:port/db`` without credentials, for logs and health."""
        kwargs = self._pool.connection_kwargs
        return f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"

    def close(self) -> None:
        """Disconnect the synchronous pool (asyncio clients close with ``aclose``)."""
        self._close_sync()

    async def aclose(self) -> None:
        """Close the asyncio client of the running event loop, if one was made."""
        await self._close_loop()
