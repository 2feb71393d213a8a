"""The Redis Cluster commands of RedisClusterBackend, asyncio face: the L2 contract on a cluster.

``salescast/cache/_sync/redis_cluster_commands.py`` is generated from this
file by ``scripts/unasync.py``. Every key of one product carries the same
hash tag (``salescast.cache.keys``), so an entry, its tag counter and its
lease share a slot; a GET and its PTTL go as one script on that slot.
Deletes by pattern SCAN every master and UNLINK per slot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import redis
from redis.exceptions import RedisClusterException

from salescast.cache.backends.base import StoredEntry
from salescast.cache.backends.redis_cluster_connections import RedisClusterConnections
from salescast.cache.backends.redis_connections import (
    RELEASE_IF_OWNER,
    SCAN_BATCH,
    millis,
    stored_entry,
)
from salescast.cache.keys import escape_glob

# redis-py's name for "every master" as a command's target (sync and asyncio alike).
PRIMARIES = "primaries"
# GET and PTTL of one key in one round trip (a cluster pipeline costs more).
GET_WITH_PTTL = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}"


class AsyncRedisClusterCommands(RedisClusterConnections):
    """``AsyncSharedBackend`` on redis-py's cluster client."""

    async def aget(self, key: str) -> StoredEntry | None:
        """Value and remaining TTL in one round trip; ``None`` on a miss."""
        # The hot path of an L2 hit: no context manager (a generator-based one
        # costs about 1 us a call), the same error mapping.
        self._count_call()
        try:
            value, pttl = await self._aclient().eval(GET_WITH_PTTL, 1, key)
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            raise self._unavailable(exc) from exc
        return stored_entry(value, int(pttl))

    async def aget_value(self, key: str) -> bytes | None:
        """GET alone, for a reader that has no use for the TTL (a cache without L1)."""
        self._count_call()
        try:
            return cast("bytes | None", await self._aclient().get(key))
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """SET with PX; a TTL ``<= 0`` deletes instead."""
        with self._io():
            client = self._aclient()
            if ttl is None:
                await client.set(key, value)
            elif ttl <= 0:
                await client.unlink(key)
            else:
                await client.set(key, value, px=millis(ttl))

    async def adelete(self, key: str) -> bool:
        """UNLINK."""
        with self._io():
            return bool(await self._aclient().unlink(key))

    async def aexists(self, key: str) -> bool:
        """EXISTS."""
        with self._io():
            return bool(await self._aclient().exists(key))

    async def aexpire(self, key: str, ttl: float) -> bool:
        """PEXPIRE; ``False`` when the key is absent."""
        with self._io():
            return bool(await self._aclient().pexpire(key, millis(ttl)))

    async def aincr(self, key: str) -> int:
        """INCR."""
        with self._io():
            return int(await self._aclient().incr(key))

    async def aget_counter(self, key: str) -> int:
        """GET of a counter; absent reads 0."""
        with self._io():
            value = await self._aclient().get(key)
        return int(value) if value is not None else 0

    async def aset_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """SET NX PX: ``True`` when this call created the key."""
        with self._io():
            return bool(await self._aclient().set(key, value, nx=True, px=millis(ttl)))

    async def adelete_if_equals(self, key: str, value: bytes) -> bool:
        """Delete ``key`` only while it still holds ``value`` (atomic, Lua, on its slot)."""
        with self._io():
            return bool(await self._aclient().eval(RELEASE_IF_OWNER, 1, key, value))

    async def adelete_prefix(self, prefix: str) -> int:
        """SCAN + UNLINK of ``prefix*`` on every master."""
        return await self.adelete_matching(escape_glob(prefix) + "*")

    async def adelete_matching(
        self, pattern: str, keep: Callable[[bytes], bool] | None = None
    ) -> int:
        """SCAN every master for ``pattern``, UNLINK in batches (the client splits a
        batch by slot); keys for which ``keep(key)`` is true are left alone."""
        removed = 0
        with self._io():
            client = self._aclient()
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=SCAN_BATCH):
                if keep is not None and keep(key):
                    continue
                batch.append(key)
                if len(batch) >= SCAN_BATCH:
                    removed += int(await client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(await client.unlink(*batch))
        return removed

    async def apublish(self, channel: str, message: bytes) -> int:
        """PUBLISH on one node; the cluster bus carries it to the subscribers of every node."""
        with self._io():
            return int(await self._aclient().publish(channel, message))

    async def aping(self) -> bool:
        """PING every master (redis-py's default asks one node): ``True`` when all
        answer, so the breaker's probe describes the cluster, not the node it knows."""
        with self._io():
            return bool(await self._aclient().ping(target_nodes=PRIMARIES))

    async def aserver_info(self) -> dict[str, Any]:
        """INFO server of one master (version, uptime) for health reports."""
        with self._io():
            info: dict[str, Any] = await self._aclient().info("server")
        return info
