"""The Redis Cluster commands of RedisClusterBackend, asyncio face: the L2 contract on a cluster.

``salescast/cache/_sync/redis_cluster_commands.py`` is generated from this
file by ``scripts/unasync.py``. Every key of one product carries the same
hash tag (``salescast.cache.keys``), so an entry, its tag counter and its
lease share a slot. A hit's GET (and PTTL) go straight to the slot's master
on a kept connection (``AsyncHitPath``); when that cannot settle it, through
the cluster client (GET and PTTL as one script on the slot). Deletes by
pattern SCAN every master and UNLINK per slot.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    RedisClusterException,
    TryAgainError,
)

from salescast.cache._async.redis_hit_path import AsyncHitPath, Commands
from salescast.cache._async.redis_key_commands import AsyncRedisKeyCommands
from salescast.cache.backends.base import StoredEntry
from salescast.cache.backends.redis_cluster_connections import RedisClusterConnections
from salescast.cache.backends.redis_connections import stored_entry

# redis-py's name for "every master" as a command's target (sync and asyncio alike).
PRIMARIES = "primaries"
# GET and PTTL of one key in one round trip (a cluster pipeline costs more).
GET_WITH_PTTL = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}"
# What a node answers when the cluster client must route instead (MovedError
# is an AskError), and a connection that failed: the client re-routes those.
# A timeout is not among them: a node that does not answer costs one timeout.
_ROUTE_AGAIN = (AskError, TryAgainError, ClusterDownError, redis.ConnectionError)


class AsyncRedisClusterCommands(RedisClusterConnections, AsyncHitPath, AsyncRedisKeyCommands):
    """``AsyncSharedBackend`` on redis-py's cluster client."""

    async def aget(self, key: str) -> StoredEntry | None:
        """Value and remaining TTL in one round trip; ``None`` on a miss."""
        # The hot path of an L2 hit: no context manager (a generator-based one
        # costs about 1 us a call), the same error mapping.
        self._count_call()
        try:
            replies = await self._around_trip_on_node(key, (("GET", key), ("PTTL", key)))
            if replies is None:
                replies = await self._aclient().eval(GET_WITH_PTTL, 1, key)
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            raise self._unavailable(exc) from exc
        value, pttl = replies
        return stored_entry(value, int(pttl))

    async def aget_value(self, key: str) -> bytes | None:
        """GET alone, for a reader that has no use for the TTL (a cache without L1)."""
        self._count_call()
        try:
            replies = await self._around_trip_on_node(key, (("GET", key),))
            if replies is None:
                replies = [await self._aclient().get(key)]
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            raise self._unavailable(exc) from exc
        return replies[0]  # type: ignore[no-any-return]

    async def _around_trip_on_node(self, key: str, commands: Commands) -> list[Any] | None:
        """``commands`` on a kept connection to the master of ``key``'s slot; ``None`` when
        the cluster client must route them (no slot map yet, a redirection, a
        connection that failed)."""
        hits = self._anode_hits(key)
        if hits is None:
            return None
        try:
            return await self._around_trip(hits, commands)
        except _ROUTE_AGAIN:
            return None

    async def aping(self) -> bool:
        """PING every master (redis-py's default asks one node): ``True`` when all
        answer, so the breaker's probe describes the cluster, not the node it knows."""
        with self._io():
            return bool(await self._aclient().ping(target_nodes=PRIMARIES))
