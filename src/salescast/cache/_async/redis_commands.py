"""The Redis commands of RedisBackend, asyncio face: the L2 contract on redis-py.

``salescast/cache/_sync/redis_commands.py`` is generated from this file by
``scripts/unasync.py``; ``RedisBackend`` inherits both faces. The
connections, their pools and the error mapping are ``RedisConnections``'s.
"""

from __future__ import annotations

import redis

from salescast.cache._async.redis_hit_path import AsyncHitPath
from salescast.cache._async.redis_key_commands import AsyncRedisKeyCommands
from salescast.cache.backends.base import StoredEntry
from salescast.cache.backends.redis_connections import RedisConnections, stored_entry


class AsyncRedisCommands(RedisConnections, AsyncHitPath, AsyncRedisKeyCommands):
    """``AsyncSharedBackend`` on redis-py (see ``RedisBackend`` for the policy)."""

    async def aget(self, key: str) -> StoredEntry | None:
        """Value and remaining TTL in one round trip (GET + PTTL); ``None`` on a miss."""
        # The hot path of an L2 hit: no context manager, the same error mapping.
        self._count_call()
        try:
            hits = self._aconnections()
            value, pttl = await self._around_trip(hits, (("GET", key), ("PTTL", key)))
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return stored_entry(value, int(pttl))

    async def aget_value(self, key: str) -> bytes | None:
        """GET alone, for a reader that has no use for the TTL (a cache without L1)."""
        self._count_call()
        try:
            (value,) = await self._around_trip(self._aconnections(), (("GET", key),))
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return value  # type: ignore[no-any-return]

    async def aping(self) -> bool:
        """PING."""
        with self._io():
            return bool(await self._aclient().ping())
