"""The asyncio path of TieredCache: same policy, Redis through redis.asyncio.

L1 stays synchronous (a dict under a lock, never held across an ``await``).
Single-flight uses one future per key and event loop; the lease and its
polling use the asyncio client and ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from salescast.cache.guard import Unavailable
from salescast.cache.keys import Version, hash_arguments, version_text
from salescast.cache.lease import MAX_POLL_INTERVAL, new_token
from salescast.cache.lookup import MISSING, CacheSource, Lookup, last_cache_source
from salescast.cache.tier_access import untimed

if TYPE_CHECKING:
    from salescast.cache.backends.base import StoredEntry
    from salescast.cache.backends.redis import RedisBackend
    from salescast.cache.tiered import TieredCache

T = TypeVar("T")


async def aget_or_compute(
    cache: TieredCache,
    namespace: str,
    digest: str,
    compute: Callable[[], Awaitable[T]],
    *,
    ttl: float | None,
    version: Version = None,
    tags: Iterable[str] = (),
) -> Lookup[T]:
    """See ``TieredCache.aget_or_compute``; ``digest`` is ``hash_arguments(key)``."""
    tag_list = tuple(tags)
    entry_key, redis_failed = await _aresolve_digest(cache, namespace, digest, version, tag_list)
    return await alookup_key(cache, namespace, entry_key, compute, ttl, tag_list, redis_failed)


async def alookup_key(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    compute: Callable[[], Awaitable[T]],
    ttl: float | None,
    tags: tuple[str, ...],
    redis_failed: bool,
) -> Lookup[T]:
    """L1, then L2 and the computation, for a full key."""
    value = cache.io.read_l1(namespace, entry_key)
    if value is not MISSING:
        return _found(value, CacheSource.HIT_L1)
    return await alookup_below_l1(cache, namespace, entry_key, compute, ttl, tags, redis_failed)


async def alookup_below_l1(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    compute: Callable[[], Awaitable[T]],
    ttl: float | None,
    tags: tuple[str, ...],
    redis_failed: bool,
) -> Lookup[T]:
    """L2 and the computation under single-flight, once L1 has missed.

    As ``TieredCache._lookup_below_l1``: without L1, a hit skips single-flight.
    """
    if cache._l2_only and not redis_failed:
        value = await _aread_l2_hit(cache, namespace, entry_key)
        if isinstance(value, Unavailable):
            redis_failed = True  # counted; no more Redis I/O in this call
        elif value is not MISSING:
            return _found(value, CacheSource.HIT_L2)
    (value, source), _ = await cache.aflight.do(
        entry_key,
        lambda: _afill(cache, namespace, entry_key, compute, ttl, tags, redis_failed),
    )
    return _found(value, source)


async def aget(
    cache: TieredCache,
    namespace: str,
    key: Any,
    *,
    version: Version = None,
    tags: Iterable[str] = (),
) -> Lookup[Any]:
    """See ``TieredCache.aget``."""
    tag_list = tuple(tags)
    entry_key, redis_failed = await _aresolve_key(cache, namespace, key, version, tag_list)
    value = cache.io.read_l1(namespace, entry_key)
    if value is not MISSING:
        return _found(value, CacheSource.HIT_L1)
    if not redis_failed:
        value = await _aread_l2(cache, namespace, entry_key, tag_list)
        if not isinstance(value, Unavailable) and value is not MISSING:
            return _found(value, CacheSource.HIT_L2)
    cache.io.stats.miss(namespace)
    return _found(MISSING, CacheSource.MISS)


async def aentry_key(
    cache: TieredCache, namespace: str, key: Any, *, version: Version, tags: tuple[str, ...]
) -> str:
    """As ``TieredCache.entry_key``, reading unknown tag generations asynchronously."""
    return (await _aresolve_key(cache, namespace, key, version, tags))[0]


async def _aresolve_key(
    cache: TieredCache, namespace: str, key: Any, version: Version, tags: tuple[str, ...]
) -> tuple[str, bool]:
    return await _aresolve_digest(cache, namespace, hash_arguments(key), version, tags)


async def _aresolve_digest(
    cache: TieredCache, namespace: str, digest: str, version: Version, tags: tuple[str, ...]
) -> tuple[str, bool]:
    entry_key = cache._known_entry_key(namespace, digest, version, tags)
    if entry_key is not None:
        return entry_key, False
    reads = [await cache.tags.aread_generation(tag) for tag in tags]
    entry_key = cache.keys.entry_key(
        namespace,
        digest,
        version=version_text(version),
        tags=tags,
        generations=[generation for generation, _ in reads],
    )
    return entry_key, any(failed for _, failed in reads)


async def _afill(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    compute: Callable[[], Awaitable[T]],
    ttl: float | None,
    tags: tuple[str, ...],
    redis_failed: bool,
) -> tuple[Any, CacheSource]:
    value = MISSING if redis_failed else await _aread_l2(cache, namespace, entry_key, tags)
    if not isinstance(value, Unavailable) and value is not MISSING:
        return value, CacheSource.HIT_L2
    cache.io.stats.miss(namespace)
    if redis_failed or isinstance(value, Unavailable) or cache.l2 is None or cache.lease_ttl <= 0:
        redis_ok = not (redis_failed or isinstance(value, Unavailable))
        computed = await _acompute_and_store(
            cache, namespace, entry_key, compute, ttl, tags, l2=redis_ok
        )
        return computed, CacheSource.MISS
    return await _afill_under_lease(cache, namespace, entry_key, compute, ttl, tags)


async def _afill_under_lease(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    compute: Callable[[], Awaitable[T]],
    ttl: float | None,
    tags: tuple[str, ...],
) -> tuple[Any, CacheSource]:
    """As ``lease.fill_under_lease``, awaiting."""
    assert cache.l2 is not None
    l2 = cache.l2
    lease_key = cache.keys.lease_key(entry_key)
    token = new_token()
    deadline = cache.clock() + cache.lease_ttl
    acquired, redis_ok = False, True
    while cache.clock() < deadline:
        got = await cache.guard.acall(lambda: l2.aset_if_absent(lease_key, token, cache.lease_ttl))
        if isinstance(got, Unavailable):
            redis_ok = False
            break
        if got:
            acquired = True
            break
        value = await _await_value(cache, namespace, entry_key, lease_key, tags, deadline)
        if isinstance(value, Unavailable):
            redis_ok = False
            break
        if value is not MISSING:
            return value, CacheSource.HIT_L2
    try:
        if acquired:
            value = await _aread_l2(cache, namespace, entry_key, tags, count=False)
            if not isinstance(value, Unavailable) and value is not MISSING:
                return value, CacheSource.HIT_L2
        value = await _acompute_and_store(
            cache, namespace, entry_key, compute, ttl, tags, l2=redis_ok
        )
        return value, CacheSource.MISS
    finally:
        if acquired:
            await cache.guard.acall(lambda: l2.adelete_if_equals(lease_key, token))


async def _await_value(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    lease_key: str,
    tags: tuple[str, ...],
    deadline: float,
) -> Any:
    assert cache.l2 is not None
    l2 = cache.l2
    interval = cache.lease_poll_interval
    while cache.clock() < deadline:
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, MAX_POLL_INTERVAL)
        value = await _aread_l2(cache, namespace, entry_key, tags, count=False)
        if value is not MISSING:
            return value
        held = await cache.guard.acall(lambda: l2.aexists(lease_key))
        if isinstance(held, Unavailable):
            return held
        if not held:
            return await _aread_l2(cache, namespace, entry_key, tags, count=False)
    return MISSING


async def _acompute_and_store(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    compute: Callable[[], Awaitable[T]],
    ttl: float | None,
    tags: tuple[str, ...],
    *,
    l2: bool = True,
) -> T:
    value = await compute()
    cache.io.stats.computed(namespace)
    await astore(cache, namespace, entry_key, value, ttl, tags, l2=l2)
    return value


async def astore(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    value: Any,
    ttl: float | None,
    tags: tuple[str, ...],
    *,
    l2: bool = True,
) -> bool:
    """As ``TieredCache._store`` with the asyncio Redis client."""
    data = cache.io.encode(namespace, entry_key, value)
    if data is None:
        return False
    cache.io.store_l1(namespace, entry_key, value, len(data), ttl, tags)
    if cache.l2 is not None and l2:
        backend = cache.l2
        result = await cache.guard.acall(lambda: backend.aset(entry_key, data, ttl))
        cache.io.after_l2_write(namespace, result, len(data))
    return True


async def _aread_l2(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    tags: tuple[str, ...],
    *,
    count: bool = True,
) -> Any:
    if cache.l2 is None:
        return MISSING
    l2 = cache.l2
    started = time.perf_counter()
    if cache.l1 is None:
        # Nothing to fill, so no need for the TTL: a plain GET.
        entry = await cache.guard.acall(lambda: _aget_untimed(l2, entry_key))
    else:
        entry = await cache.guard.acall(lambda: l2.aget(entry_key))
    return cache.io.after_l2_read(namespace, entry_key, tags, entry, started, count=count)


async def _aread_l2_hit(cache: TieredCache, namespace: str, entry_key: str) -> Any:
    # As TierAccess.read_l2_hit, on the asyncio client.
    l2 = cache.l2
    assert l2 is not None
    started = time.perf_counter()
    data = await cache.guard.acall(l2.aget_value, entry_key)
    return cache.io.after_l2_hit_read(namespace, entry_key, data, started)


async def adelete_key(cache: TieredCache, entry_key: str) -> bool:
    """As ``TieredCache.delete_key``, on the asyncio Redis client."""
    removed = cache.l1.delete(entry_key) if cache.l1 is not None else False
    if cache.l2 is not None:
        l2 = cache.l2
        result = await cache.guard.acall(lambda: l2.adelete(entry_key))
        removed = removed or result is True
        await cache.tags.apublish({"op": "delete", "key": entry_key})
    return removed


def _found(value: T, source: CacheSource) -> Lookup[T]:
    last_cache_source.set(source)
    return Lookup(value, source)


async def _aget_untimed(l2: RedisBackend, entry_key: str) -> StoredEntry | None:
    return untimed(await l2.aget_value(entry_key))
