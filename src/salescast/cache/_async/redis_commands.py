"""The Redis commands of RedisBackend, asyncio face: the L2 contract on redis-py.

``salescast/cache/_sync/redis_commands.py`` is generated from this file by
``scripts/unasync.py``; ``RedisBackend`` inherits both faces. The
connections, their pools and the error mapping are ``RedisConnections``'s.
"""

from __future__ import annotations

from typing import Any

import redis

from salescast.cache._async.redis_key_commands import AsyncRedisKeyCommands
from salescast.cache.backends.base import StoredEntry
from salescast.cache.backends.redis_connections import (
    HitConnections,
    RedisConnections,
    closed_connection,
    stored_entry,
)


class AsyncRedisCommands(RedisConnections, AsyncRedisKeyCommands):
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

    async def aping(self) -> bool:
        """PING."""
        with self._io():
            return bool(await self._aclient().ping())
