"""The Redis commands of RedisBackend, asyncio face: the L2 contract on redis-py.

``salescast/cache/_sync/redis_commands.py`` is generated from this file by
``scripts/unasync.py``; ``RedisBackend`` inherits both faces. The
connections, their pools and the error mapping are ``RedisConnections``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from salescast.cache.backends.base import StoredEntry
from salescast.cache.backends.redis_connections import (
    RELEASE_IF_OWNER,
    SCAN_BATCH,
    HitConnections,
    RedisConnections,
    closed_connection,
    millis,
    stored_entry,
)
from salescast.cache.keys import escape_glob


class AsyncRedisCommands(RedisConnections):
    """``AsyncSharedBackend`` on redis-py (see ``RedisBackend`` for the policy)."""

    async def aget(self, key: str) -> StoredEntry | None:
        """Value and remaining TTL in one round trip (GET + PTTL); ``None`` on a miss."""
        # The hot path of an L2 hit: no context manager, the same error mapping.
        self._count_call()
        try:
            value, pttl = await self._around_trip((("GET", key), ("PTTL", key)))
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return stored_entry(value, int(pttl))

    async def aget_value(self, key: str) -> bytes | None:
        """GET alone, for a reader that has no use for the TTL (a cache without L1)."""
        self._count_call()
        try:
            (value,) = await self._around_trip((("GET", key),))
        except (redis.RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return value  # type: ignore[no-any-return]

    async def _around_trip(self, commands: tuple[tuple[str, str], ...]) -> list[Any]:
        # The commands written together on one connection, the replies read
        # in order: the single round trip of a pipeline without the tens of
        # microseconds of Python a redis-py pipeline object adds (command
        # stack, hooks, callbacks), which made an L2 hit cost well over a GET.
        hits = self._aconnections()
        try:
            connection = hits.idle.pop()
        except IndexError:
            connection = await hits.pool.get_connection()
        else:
            try:
                return await self._aexchange(hits, connection, commands)
            except redis.ConnectionError as exc:
                if not closed_connection(exc):
                    raise
            # Closed while it waited on the stack: once more, from the pool.
            connection = await hits.pool.get_connection()
        return await self._aexchange(hits, connection, commands)

    async def _aexchange(
        self, hits: HitConnections, connection: Any, commands: tuple[tuple[str, str], ...]
    ) -> list[Any]:
        try:
            await connection.send_packed_command(connection.pack_commands(commands))
            replies = [await connection.read_response() for _ in commands]
        except BaseException:
            # Cancelled or failed between the replies: never hand this socket
            # to another caller.
            try:
                await connection.disconnect()
            finally:
                await hits.pool.release(connection)
            raise
        with hits.lock:  # the check and the append as one step across threads
            keep = len(hits.idle) < self._idle_limit
            if keep:
                hits.idle.append(connection)
        if not keep:
            await hits.pool.release(connection)
        return replies

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
        """UNLINK (frees memory off the main thread)."""
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
        """Delete ``key`` only while it still holds ``value`` (atomic, Lua)."""
        with self._io():
            return bool(await self._aclient().eval(RELEASE_IF_OWNER, 1, key, value))

    async def adelete_prefix(self, prefix: str) -> int:
        """SCAN + UNLINK of ``prefix*`` in batches; never blocks Redis on one big command."""
        return await self.adelete_matching(escape_glob(prefix) + "*")

    async def adelete_matching(
        self, pattern: str, keep: Callable[[bytes], bool] | None = None
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

    async def apublish(self, channel: str, message: bytes) -> int:
        """PUBLISH; returns how many subscribers received it."""
        with self._io():
            return int(await self._aclient().publish(channel, message))

    async def aping(self) -> bool:
        """PING."""
        with self._io():
            return bool(await self._aclient().ping())

    async def aserver_info(self) -> dict[str, Any]:
        """INFO server (version, uptime) for health reports."""
        with self._io():
            info: dict[str, Any] = await self._aclient().info("server")
        return info
