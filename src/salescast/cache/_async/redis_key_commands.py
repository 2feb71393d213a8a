"""The keyed Redis commands both shared tiers send alike, asyncio face.

One server (``redis_commands.py``) and a cluster (``redis_cluster_commands.py``)
differ in how a hit reads and how a probe pings; every other command of the
L2 contract is the same redis-py call on either client, written here once.
``salescast/cache/_sync/redis_key_commands.py`` is generated from this file.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from salescast.cache.backends.redis_connections import (
    RELEASE_IF_OWNER,
    SCAN_BATCH,
    millis,
)
from salescast.cache.keys import escape_glob


class _Connected(Protocol):
    """What the commands need of the connections under them."""

    _sync_client: Any

    def _aclient(self) -> Any: ...

    def _io(self) -> AbstractContextManager[None]: ...

    async def adelete_matching(
        self, pattern: str, keep: Callable[[bytes], bool] | None = None
    ) -> int: ...


class AsyncRedisKeyCommands:
    """SET, UNLINK, EXISTS, PEXPIRE, INCR, leases, SCAN deletes, PUBLISH, INFO (asyncio face)."""

    async def aset(self: _Connected, key: str, value: bytes, ttl: float | None) -> None:
        """SET with PX; a TTL ``<= 0`` deletes instead."""
        with self._io():
            client = self._aclient()
            if ttl is None:
                await client.set(key, value)
            elif ttl <= 0:
                await client.unlink(key)
            else:
                await client.set(key, value, px=millis(ttl))

    async def adelete(self: _Connected, key: str) -> bool:
        """UNLINK (frees memory off the main thread)."""
        with self._io():
            return bool(await self._aclient().unlink(key))

    async def aexists(self: _Connected, key: str) -> bool:
        """EXISTS."""
        with self._io():
            return bool(await self._aclient().exists(key))

    async def aexpire(self: _Connected, key: str, ttl: float) -> bool:
        """PEXPIRE; ``False`` when the key is absent."""
        with self._io():
            return bool(await self._aclient().pexpire(key, millis(ttl)))

    async def aincr(self: _Connected, key: str) -> int:
        """INCR."""
        with self._io():
            return int(await self._aclient().incr(key))

    async def aget_counter(self: _Connected, key: str) -> int:
        """GET of a counter; absent reads 0."""
        with self._io():
            value = await self._aclient().get(key)
        return int(value) if value is not None else 0

    async def aset_if_absent(self: _Connected, key: str, value: bytes, ttl: float) -> bool:
        """SET NX PX: ``True`` when this call created the key."""
        with self._io():
            return bool(await self._aclient().set(key, value, nx=True, px=millis(ttl)))

    async def adelete_if_equals(self: _Connected, key: str, value: bytes) -> bool:
        """Delete ``key`` only while it still holds ``value`` (atomic, Lua)."""
        with self._io():
            return bool(await self._aclient().eval(RELEASE_IF_OWNER, 1, key, value))

    async def adelete_prefix(self: _Connected, prefix: str) -> int:
        """SCAN + UNLINK of ``prefix*`` in batches; never blocks Redis on one big command."""
        return await self.adelete_matching(escape_glob(prefix) + "*")

    async def adelete_matching(
        self: _Connected, pattern: str, keep: Callable[[bytes], bool] | None = None
    ) -> int:
        """SCAN + UNLINK of keys matching a glob ``pattern`` (caller escapes literals),
        in batches; keys for which ``keep(key)`` is true are left alone."""
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

    async def apublish(self: _Connected, channel: str, message: bytes) -> int:
        """PUBLISH; returns how many subscribers received it."""
        with self._io():
            return int(await self._aclient().publish(channel, message))

    async def aserver_info(self: _Connected) -> dict[str, Any]:
        """INFO server (version, uptime) for health reports."""
        with self._io():
            info: dict[str, Any] = await self._aclient().info("server")
        return info
