"""The cache's control flow, asyncio face: lookups, fills, the lease, tags, writes.

This file is the one source of truth for how a lookup goes L1 → L2 →
compute, how a cold key is filled under single-flight and the cross-process
lease, how tag generations are read and bumped, and how writes, deletes and
invalidation messages reach Redis. ``salescast/cache/_sync/flow.py`` is
generated from it by ``scripts/unasync.py`` (``make unasync``; ``make lint``
fails when the generated file is out of date), so the two faces cannot
drift: they differ only where unasync rewrites (``async``/``await`` go,
awaitable types become plain ones, and the backend's asyncio methods
become their sync twins: the names lose their ``a`` prefix). State without
I/O (L1 objects and counters, known tag generations, the entry-key memo) is
shared by both faces: ``TierAccess``, ``TagBook``, ``EntryKeys``. See
docs/decisions/0009-one-control-flow-generated-for-sync.md.

**The lease.** After a miss in both tiers, a process takes
``prefix:_lease:<key>`` with ``SET NX PX`` and a random token, computes,
stores, and releases the lease with a Lua compare-and-delete (only the
token's owner can release it). A process that finds the lease taken polls L2
(20 ms, growing to 100 ms) for the value; when the lease disappears without a
value (the owner failed) it tries to take the lease itself; when a whole
lease TTL passes it computes on its own rather than wait longer. Any Redis
failure ends the dance: the caller computes and keeps the result in L1 only.
Hits never touch the lease.

**Why the repetition.** The lookup methods repeat one positional parameter
list (namespace, key, compute, ttl, tags, redis_failed): the hot path builds
no argument object and parses no keywords. The module (past 400 lines) is
one class on purpose: the whole flow of a lookup reads top to bottom in one
place, and unasync rewrites it as one unit.

**One timeout per call.** Every L2 operation goes through the breaker guard,
which answers ``SKIPPED``/``FAILED`` instead of raising; once one operation
of a call failed, the rest of that call does no Redis I/O (``redis_failed``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, TypeVar

from salescast.cache._async.contract import AsyncSharedBackend
from salescast.cache.backends.memory import MemoryBackend
from salescast.cache.background import TaskRunner
from salescast.cache.entry_keys import EntryKeys
from salescast.cache.frames import FrameTimes
from salescast.cache.guard import FAILED, BreakerGuard, Unavailable
from salescast.cache.invalidation import encode_message
from salescast.cache.keys import KeyBuilder, Version, escape_glob
from salescast.cache.lease import MAX_POLL_INTERVAL, OwedLeases, new_token
from salescast.cache.lifetime import is_sliding
from salescast.cache.lookup import MISSING, CacheSource, last_cache_source
from salescast.cache.singleflight import AsyncSingleFlight
from salescast.cache.tags import TagBook
from salescast.cache.tier_access import Stale, TierAccess, untimed

T = TypeVar("T")
MISS = CacheSource.MISS
HIT_L1 = CacheSource.HIT_L1
HIT_L2 = CacheSource.HIT_L2

logger = logging.getLogger("salescast.cache")


class AsyncFlow:
    """Every cache operation that may do I/O, for one ``TieredCache`` (asyncio face).

    Lookups return ``(value, source)`` tuples (the hot path builds no
    ``Lookup``) and set ``last_cache_source``. Never raises because of Redis
    or of stored bytes; exceptions of ``compute`` reach the caller.
    """

    def __init__(
        self,
        *,
        l2: AsyncSharedBackend | None,
        io: TierAccess,
        guard: BreakerGuard,
        keys: KeyBuilder,
        entry_keys: EntryKeys,
        tags: TagBook,
        owed_leases: OwedLeases,
        lease_ttl: float,
        lease_poll_interval: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        background: TaskRunner,
    ) -> None:
        self.l1: MemoryBackend | None = io.l1
        self.l2 = l2
        self.io = io
        self.guard = guard
        self.keys = keys
        self.entry_keys = entry_keys
        self.tags = tags
        self.owed_leases = owed_leases
        self.lease_ttl = lease_ttl
        self.lease_poll_interval = lease_poll_interval
        self.clock = clock
        self.sleep = sleep
        self.background = background
        self.flight = AsyncSingleFlight()
        # Without L1 every hit is a GET: hits read Redis before single-flight.
        self.l2_only = io.l1 is None and l2 is not None

    # -- lookups ------------------------------------------------------------

    async def lookup_hashed(
        self,
        namespace: str,
        digest: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        version: Version,
        tags: tuple[str, ...],
    ) -> tuple[T, CacheSource]:
        """L1 → L2 → ``compute()`` for ``digest = hash_arguments(key)``."""
        entry_key, redis_failed = await self.resolve_digest(namespace, digest, version, tags)
        return await self.lookup_key(namespace, entry_key, compute, ttl, tags, redis_failed)

    async def lookup_key(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
        redis_failed: bool,
    ) -> tuple[T, CacheSource]:
        """L1, then L2 and the computation, for a full key."""
        value = self.io.read_l1(namespace, entry_key)
        if value is not MISSING:
            last_cache_source.set(HIT_L1)
            return value, HIT_L1
        return await self.lookup_below_l1(namespace, entry_key, compute, ttl, tags, redis_failed)

    async def lookup_below_l1(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
        redis_failed: bool,
    ) -> tuple[T, CacheSource]:
        """L2 and the computation under single-flight, once L1 has missed (the
        decorators read L1 themselves and come straight here)."""
        if self.l2_only and not redis_failed:
            # Without L1 every hit is a GET anyway: hits skip single-flight,
            # which only spares concurrent misses a computation each.
            value = await self.read_l2_hit(namespace, entry_key)
            if isinstance(value, Unavailable):
                redis_failed = True  # counted; no more Redis I/O in this call
            elif value is not MISSING:
                last_cache_source.set(HIT_L2)
                return value, HIT_L2
        (value, source), _ = await self.flight.do(
            entry_key,
            lambda: self.fill(namespace, entry_key, compute, ttl, tags, redis_failed),
        )
        last_cache_source.set(source)
        return value, source

    async def get(
        self, namespace: str, digest: str, version: Version, tags: tuple[str, ...]
    ) -> tuple[Any, CacheSource]:
        """``(value, HIT-L1|HIT-L2)``, or ``(MISSING, MISS)`` when no tier has it."""
        entry_key, redis_failed = await self.resolve_digest(namespace, digest, version, tags)
        value = self.io.read_l1(namespace, entry_key)
        if value is not MISSING:
            last_cache_source.set(HIT_L1)
            return value, HIT_L1
        if not redis_failed:
            value = await self.read_l2(namespace, entry_key, tags)
            if not isinstance(value, Unavailable) and value is not MISSING:
                last_cache_source.set(HIT_L2)
                return value, HIT_L2
        self.io.stats.miss(namespace)
        last_cache_source.set(MISS)
        return MISSING, MISS

    # -- keys and tag generations -------------------------------------------

    async def entry_key(
        self, namespace: str, digest: str, version: Version, tags: tuple[str, ...]
    ) -> str:
        """The full key under the tags' current generations."""
        return (await self.resolve_digest(namespace, digest, version, tags))[0]

    async def resolve_digest(
        self, namespace: str, digest: str, version: Version, tags: tuple[str, ...]
    ) -> tuple[str, bool]:
        """The full key, and whether reading a tag generation from Redis just failed."""
        entry_key = self.entry_keys.known(namespace, digest, version, tags)
        if entry_key is not None:
            return entry_key, False
        redis_failed = False
        generations = []
        for tag in tags:
            generation, failed = await self.read_generation(tag)
            generations.append(generation)
            redis_failed = redis_failed or failed
        return self.entry_keys.build(namespace, digest, version, tags, generations), redis_failed

    async def read_generation(self, tag: str) -> tuple[int, bool]:
        """``(generation, redis_failed)``: the flag tells the caller to spare Redis
        for the rest of its call (one timeout per call, not one per operation)."""
        book = self.tags
        known = book.known(tag)
        if known is not None:
            return known, False
        l2 = self.l2
        if l2 is None:
            return book.remember(tag, 0), False
        epoch = book.epoch
        result = await self.guard.acall(l2.aget_counter, self.keys.tag_counter_key(tag))
        return book.after_read(tag, result, epoch), result is FAILED

    # -- writes and invalidation ---------------------------------------------

    async def store(
        self,
        namespace: str,
        entry_key: str,
        value: Any,
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        to_l2: bool = True,
        compute_seconds: float = 0.0,
    ) -> bool:
        """Encode once, keep the object in L1 and the frame in L2; ``False`` when
        the value cannot be encoded (stored in neither tier, counted). A
        sliding ``ttl`` gives Redis the idle time, within the stale window."""
        io = self.io
        data = io.encode(namespace, entry_key, value, compute_seconds)
        if data is None:
            return False
        l2_ttl = ttl
        if is_sliding(ttl):
            assert ttl is not None
            wall_now = io.wall_clock()
            times = FrameTimes(float(int(wall_now)), compute_seconds)  # as the frame has it
            io.store_l1(namespace, entry_key, value, len(data), ttl, tags, times)
            l2_ttl = io.lifetime.l2_ttl(ttl, times, wall_now)
        else:
            io.store_l1(namespace, entry_key, value, len(data), ttl, tags)
        l2 = self.l2
        if l2 is not None and to_l2:
            result = await self.guard.acall(l2.aset, entry_key, data, l2_ttl)
            io.after_l2_write(namespace, result, len(data))
        return True

    async def delete_key(self, entry_key: str) -> bool:
        """Remove a full key from both tiers and tell other processes to drop it."""
        removed = self.l1.delete(entry_key) if self.l1 is not None else False
        l2 = self.l2
        if l2 is not None:
            result = await self.guard.acall(l2.adelete, entry_key)
            removed = removed or result is True
            await self.publish({"op": "delete", "key": entry_key})
        return removed

    async def invalidate_tag(self, tag: str) -> int:
        """Bump ``tag``'s generation, drop its L1 entries, tell every process."""
        generation: int | Unavailable
        l2 = self.l2
        if l2 is not None:
            generation = await self.guard.acall(l2.aincr, self.keys.tag_counter_key(tag))
        else:
            generation = self.tags.local_bump(tag)
        if isinstance(generation, Unavailable):
            # Without Redis only this process can forget; others keep their L1
            # until they reconnect (which empties it) or the TTL ends.
            logger.warning("invalidate_tag(%r): Redis unavailable, invalidated locally only", tag)
            generation = self.tags.local_bump(tag)
        self.tags.apply_tag(tag, generation)
        await self.publish({"op": "tag", "tag": tag, "gen": generation})
        return generation

    async def clear(self, *, namespace: str | None, tag: str | None) -> int:
        """See ``TieredCache.clear``."""
        keys = self.keys
        if tag is not None:
            await self.invalidate_tag(tag)
            return await self._delete_matching(keys.tag_pattern(tag, namespace), None)
        removed = 0
        prefix = keys.namespace_prefix(namespace) if namespace else keys.prefix + ":"
        if self.l1 is not None:
            removed += self.l1.delete_prefix(prefix)
        # Tag counters stay: resetting them could make old generations current again.
        counters = (keys.prefix + ":_tag:").encode()
        removed += await self._delete_matching(
            escape_glob(prefix) + "*", lambda key: key.startswith(counters)
        )
        await self.publish({"op": "clear", "namespace": namespace})
        return removed

    async def _delete_matching(self, pattern: str, keep: Callable[[bytes], bool] | None) -> int:
        l2 = self.l2
        if l2 is None:
            return 0
        result = await self.guard.acall(l2.adelete_matching, pattern, keep)
        return 0 if isinstance(result, Unavailable) else int(result)

    async def publish(self, message: dict[str, Any]) -> None:
        """Send an invalidation to every process (best effort, through the breaker)."""
        l2 = self.l2
        if l2 is None:
            return
        payload = encode_message({**message, "origin": self.tags.instance_id})
        await self.guard.acall(l2.apublish, self.keys.channel, payload)

    # -- fills ----------------------------------------------------------------

    async def fill(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
        redis_failed: bool,
    ) -> tuple[Any, CacheSource]:
        """L2, then the computation: the one run of a key under single-flight."""
        if self.owed_leases.pending and not redis_failed:
            redis_failed = not await self._release_owed_leases()
        value = MISSING if redis_failed else await self.read_l2(namespace, entry_key, tags, ttl)
        if not isinstance(value, Unavailable) and value is not MISSING:
            return self.served(namespace, entry_key, value, compute, ttl, tags), HIT_L2
        stale = self.io.read_l1_stale(namespace, entry_key, ttl)
        if stale is not MISSING:
            # Due for its refresh and not (or no longer) in Redis: serve the
            # value L1 still has while the refresh runs.
            self.refresh_later(namespace, entry_key, compute, ttl, tags)
            return stale, HIT_L1
        self.io.stats.miss(namespace)
        if redis_failed or isinstance(value, Unavailable):
            # Redis just failed (or the breaker is open): no lease, no L2
            # write in this call, so one call pays at most one timeout.
            computed = await self.compute_and_store(
                namespace, entry_key, compute, ttl, tags, to_l2=False
            )
            return computed, MISS
        if self.l2 is None or self.lease_ttl <= 0:
            return await self.compute_and_store(namespace, entry_key, compute, ttl, tags), MISS
        return await self.fill_under_lease(namespace, entry_key, compute, ttl, tags)

    async def fill_under_lease(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> tuple[Any, CacheSource]:
        """Compute ``entry_key`` once across processes (see the module docstring)."""
        l2 = self.l2
        assert l2 is not None
        lease_key = self.keys.lease_key(entry_key)
        token = new_token()
        deadline = self.clock() + self.lease_ttl
        acquired, redis_ok = False, True
        while self.clock() < deadline:
            got = await self.guard.acall(l2.aset_if_absent, lease_key, token, self.lease_ttl)
            if isinstance(got, Unavailable):
                redis_ok = False
                break
            if got:
                acquired = True
                break
            value = await self._await_value(namespace, entry_key, lease_key, tags, ttl, deadline)
            if isinstance(value, Unavailable):
                redis_ok = False
                break
            if value is not MISSING:
                return self.served(namespace, entry_key, value, compute, ttl, tags), HIT_L2
        try:
            if acquired:
                # The previous owner may have stored the value between our miss
                # and our lease: look once more before computing again.
                value = await self.read_l2(namespace, entry_key, tags, ttl, count=False)
                if not isinstance(value, Unavailable) and value is not MISSING:
                    return self.served(namespace, entry_key, value, compute, ttl, tags), HIT_L2
            computed = await self.compute_and_store(
                namespace, entry_key, compute, ttl, tags, to_l2=redis_ok
            )
            return computed, MISS
        finally:
            if acquired:
                await self._release_lease(lease_key, token)

    async def _release_lease(self, lease_key: str, token: bytes) -> None:
        """Release a lease this process holds (compare-and-delete on its token)."""
        l2 = self.l2
        assert l2 is not None
        released = await self.guard.acall(l2.adelete_if_equals, lease_key, token)
        if isinstance(released, Unavailable):
            # Redis failed while we held the lease (a master may have died with
            # it, and its replica now holds it): release it as soon as Redis
            # answers, or other processes wait it out.
            self.owed_leases.owe(lease_key, token)

    async def _release_owed_leases(self) -> bool:
        """Release the leases whose release failed (see ``OwedLeases``); ``False`` when
        Redis failed again (the caller then spares it for the rest of its call)."""
        l2 = self.l2
        assert l2 is not None
        owed = self.owed_leases.take()
        for index, (lease_key, token) in enumerate(owed):
            released = await self.guard.acall(l2.adelete_if_equals, lease_key, token)
            if isinstance(released, Unavailable):
                for later_key, later_token in owed[index:]:
                    self.owed_leases.owe(later_key, later_token)
                return False
        return True

    async def _await_value(
        self,
        namespace: str,
        entry_key: str,
        lease_key: str,
        tags: tuple[str, ...],
        ttl: float | None,
        deadline: float,
    ) -> Any:
        """Poll L2 while another process holds the lease.

        Returns the value, ``MISSING`` when the lease is gone without a value
        or the deadline passed, or an ``Unavailable`` marker when Redis failed.
        """
        l2 = self.l2
        assert l2 is not None
        interval = self.lease_poll_interval
        while self.clock() < deadline:
            await self.sleep(interval)
            interval = min(interval * 1.5, MAX_POLL_INTERVAL)
            value = await self.read_l2(namespace, entry_key, tags, ttl, count=False)
            if value is not MISSING:
                return value
            held = await self.guard.acall(l2.aexists, lease_key)
            if isinstance(held, Unavailable):
                return held
            if not held:
                # Released: the owner stored the value just before, or failed.
                return await self.read_l2(namespace, entry_key, tags, ttl, count=False)
        return MISSING

    async def compute_and_store(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        to_l2: bool = True,
    ) -> T:
        """``compute()``, counted and timed, then stored (in L1 only when ``to_l2`` is false)."""
        started = perf_counter()
        value = await compute()
        seconds = perf_counter() - started
        self.io.stats.computed(namespace)
        await self.store(
            namespace, entry_key, value, ttl, tags, to_l2=to_l2, compute_seconds=seconds
        )
        return value

    # -- refreshes of entries due by age ---------------------------------------

    def served(
        self,
        namespace: str,
        entry_key: str,
        value: Any,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> Any:
        """The value a read found; a ``Stale`` one is also refreshed in the background."""
        if type(value) is Stale:
            self.refresh_later(namespace, entry_key, compute, ttl, tags)
            return value.value
        return value

    def refresh_later(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> None:
        """Start ``refresh`` off the caller's path (once per key at a time in this process)."""
        self.background.start(
            ("refresh", entry_key),
            lambda: self.refresh(namespace, entry_key, compute, ttl, tags),
        )

    async def refresh(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> None:
        """Compute an entry again while its current value is being served.

        Once across processes: only the process that takes the entry's lease
        computes, and only if Redis does not hold a fresh value by then; one
        that finds the lease taken leaves the refresh to its holder (its
        readers keep the value they have until the fresh one is in Redis).
        Without Redis, or when Redis fails, this process computes and keeps
        the result in L1 only.
        """
        l2 = self.l2
        if l2 is None or self.lease_ttl <= 0:
            await self.compute_and_store(namespace, entry_key, compute, ttl, tags)
            self.io.stats.refreshed(namespace)
            return
        lease_key = self.keys.lease_key(entry_key)
        token = new_token()
        got = await self.guard.acall(l2.aset_if_absent, lease_key, token, self.lease_ttl)
        if got is False:
            return
        acquired = got is True
        try:
            if acquired:
                # Another process may have refreshed it just before: then the
                # fresh value is in Redis (and now in L1), nothing to compute.
                current = await self.read_l2(namespace, entry_key, tags, ttl, count=False)
                if not isinstance(current, (Unavailable, Stale)) and current is not MISSING:
                    return
            await self.compute_and_store(namespace, entry_key, compute, ttl, tags, to_l2=acquired)
            self.io.stats.refreshed(namespace)
        finally:
            if acquired:
                await self._release_lease(lease_key, token)

    # -- L2 reads -------------------------------------------------------------

    async def read_l2(
        self,
        namespace: str,
        entry_key: str,
        tags: tuple[str, ...],
        ttl: float | None = None,
        *,
        count: bool = True,
    ) -> Any:
        """The value (decoded once and put into L1), ``MISSING`` (not there,
        undecodable, or past its stale window), ``SKIPPED``/``FAILED``, or a
        ``Stale`` value due for a refresh (see ``TierAccess.after_l2_read``)."""
        l2 = self.l2
        if l2 is None:
            return MISSING
        started = perf_counter()
        if self.l1 is None:
            # Nothing to fill, so no need for the TTL: a plain GET.
            data = await self.guard.acall(l2.aget_value, entry_key)
            entry = data if isinstance(data, Unavailable) else untimed(data)
        else:
            entry = await self.guard.acall(l2.aget, entry_key)
        return self.io.after_l2_read(
            namespace, entry_key, tags, entry, started, count=count, ttl=ttl
        )

    async def read_l2_hit(self, namespace: str, entry_key: str) -> Any:
        """The hit path of a cache without L1: one GET, outside single-flight.

        Returns the value, ``MISSING`` or ``SKIPPED``/``FAILED``, but counts
        only what ends the lookup (see ``TierAccess.after_l2_hit_read``).
        """
        l2 = self.l2
        assert l2 is not None
        started = perf_counter()
        data = await self.guard.acall(l2.aget_value, entry_key)
        return self.io.after_l2_hit_read(namespace, entry_key, data, started)
