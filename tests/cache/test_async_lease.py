"""The cross-process lease on the asyncio path: two caches (two workers) on one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis

from salescast.cache import CacheSource, TieredCache

MakeCache = Callable[..., TieredCache]
SLOW_COMPUTE_SECONDS = 0.3


@pytest.mark.anyio
async def test_two_caches_awaiting_one_cold_key_compute_it_once_under_a_lease(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    # Single-flight is per cache instance, so only the lease in Redis can make
    # the second cache wait for the first one's computation.
    first, second = make_cache(), make_cache()
    lease_key = first.keys.lease_key(first.entry_key("prediction", "cold"))
    assert raw_redis.exists(lease_key) == 0
    lease_seen_while_computing: list[int] = []

    async def slow_forecast() -> dict[str, int]:
        lease_seen_while_computing.append(raw_redis.exists(lease_key))
        await asyncio.sleep(SLOW_COMPUTE_SECONDS)
        lease_seen_while_computing.append(raw_redis.exists(lease_key))
        return {"yhat": 42}

    async with asyncio.timeout(10):  # a safety bound, not a measurement
        lookups = await asyncio.gather(
            first.aget_or_compute("prediction", "cold", slow_forecast, ttl=60),
            second.aget_or_compute("prediction", "cold", slow_forecast, ttl=60),
        )

    assert lease_seen_while_computing == [1, 1]  # one computation, holding the lease throughout
    assert [lookup.value for lookup in lookups] == [{"yhat": 42}, {"yhat": 42}]
    assert sorted(lookup.source for lookup in lookups) == sorted(
        [CacheSource.MISS, CacheSource.HIT_L2]
    )
    computations = [
        cache.stats().namespaces["prediction"].computations for cache in (first, second)
    ]
    assert sorted(computations) == [0, 1]
    assert raw_redis.exists(lease_key) == 0  # released once the value is stored
    await first.aclose()
    await second.aclose()
