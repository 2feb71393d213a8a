"""The L2 hit's round trip on a kept connection, asyncio face: one server and a cluster's nodes.

``salescast/cache/_sync/redis_hit_path.py`` is generated from this file.
The commands of a hit (GET, or GET and PTTL) are written together on one
connection and the replies read in order: the single round trip of a
pipeline without the tens of microseconds of Python a redis-py pipeline or
cluster client adds per call (command stack, hooks, routing, retries). The
connection comes from a stack of connections kept by the hit path
(``HitConnections``), so a hit skips the pool's bookkeeping too; ``hits.pool``
is where a new one comes from and where a broken one goes back.
"""

from __future__ import annotations

from typing import Any

import redis

from salescast.cache.backends.redis_connections import HitConnections, closed_connection

Commands = tuple[tuple[str, str], ...]


class AsyncHitPath:
    """``_around_trip``: the hit's commands on a kept connection of ``hits``."""

    _idle_limit: int

    async def _around_trip(self, hits: HitConnections, commands: Commands) -> list[Any]:
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
        self, hits: HitConnections, connection: Any, commands: Commands
    ) -> list[Any]:
        try:
            await connection.send_packed_command(connection.pack_commands(commands))
            replies = [await connection.read_response() for _ in commands]
        except BaseException:
            # Cancelled, failed or answered with an error (a redirection) between
            # the replies: never hand this socket to another caller.
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
