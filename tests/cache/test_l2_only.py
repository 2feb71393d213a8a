"""A TieredCache without L1 (every hit a Redis GET): hits skip single-flight, and
misses, failures and undecodable entries are still counted once per call."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from salescast.cache import (
    BreakerState,
    CacheSource,
    CircuitBreaker,
    TieredCache,
    cached,
    last_cache_source,
)
from tests.support.redis_server import RedisServer, free_port

MakeCache = Callable[..., TieredCache]


@pytest.fixture
def l2_only(make_cache: MakeCache) -> TieredCache:
    cache = make_cache(use_l1=False)
    assert cache.l1 is None
    return cache


def l2_stats(cache: TieredCache, namespace: str = "data") -> tuple[int, int, int]:
    """(L2 hits, L2 misses, L2 errors) of ``namespace``."""
    tier = cache.stats().namespaces[namespace].l2
    return tier.hits, tier.misses, tier.errors


def test_a_hit_is_one_get_and_counted_once(l2_only: TieredCache) -> None:
    computed: list[int] = []
    first = l2_only.get_or_compute("data", "k", lambda: computed.append(1) or [1, 2], ttl=60)
    assert first == ([1, 2], CacheSource.MISS)
    assert l2_stats(l2_only) == (0, 1, 0)
    assert l2_only.l2 is not None
    before = l2_only.l2.calls
    second = l2_only.get_or_compute("data", "k", lambda: computed.append(1) or [9], ttl=60)
    assert second == ([1, 2], CacheSource.HIT_L2)
    assert l2_only.l2.calls == before + 1  # a plain GET, no TTL asked, no lock
    assert last_cache_source.get() is CacheSource.HIT_L2
    assert computed == [1]
    stats = l2_only.stats().namespaces["data"]
    assert (stats.l2.hits, stats.l2.misses, stats.misses, stats.computations) == (1, 1, 1, 1)
    assert stats.l2.latency.count == 2  # the miss and the hit, each timed once


def test_a_hit_does_not_wait_for_a_computation_in_flight(l2_only: TieredCache) -> None:
    l2_only.set("data", "k", "stored", ttl=60)
    entry_key = l2_only.entry_key("data", "k")
    leading, release = threading.Event(), threading.Event()

    def lead() -> None:  # holds single-flight for the key, as a slow miss would
        l2_only.flow.flight.do(entry_key, lambda: leading.set() or release.wait(10))

    leader = threading.Thread(target=lead)
    leader.start()
    try:
        assert leading.wait(5)
        found: list[object] = []
        reader = threading.Thread(
            target=lambda: found.append(l2_only.get_or_compute("data", "k", lambda: "x", ttl=60))
        )
        reader.start()
        reader.join(5)
        assert found == [("stored", CacheSource.HIT_L2)]
        assert l2_only.flow.flight.in_flight() == 1  # the leader is still running
    finally:
        release.set()
        leader.join()


def test_concurrent_callers_of_a_cold_key_share_one_computation(l2_only: TieredCache) -> None:
    runs: list[int] = []
    barrier = threading.Barrier(10)
    results: list[object] = []

    @cached(namespace="data", ttl=60, cache=l2_only)
    def slow(name: str) -> dict[str, str]:
        runs.append(1)
        time.sleep(0.2)
        return {"name": name}

    def call() -> None:
        barrier.wait()
        results.append(slow("p1"))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runs == [1]
    assert results == [{"name": "p1"}] * 10
    stats = l2_only.stats().namespaces["data"]
    assert stats.computations == 1
    assert stats.misses == 1  # the followers got the leader's value, not a miss of their own


def test_an_undecodable_entry_is_one_counted_error_per_call(
    l2_only: TieredCache, raw_redis: redis.Redis
) -> None:
    key = l2_only.entry_key("data", "k")
    raw_redis.set(key, b"\x80\x04not a frame")
    value = l2_only.get_or_compute("data", "k", lambda: "fresh", ttl=60)
    assert value == ("fresh", CacheSource.MISS)
    assert l2_stats(l2_only) == (0, 0, 1)
    assert l2_only.get_or_compute("data", "k", lambda: "other", ttl=60).value == "fresh"


def test_a_redis_that_refuses_costs_one_failure_per_call(make_cache: MakeCache) -> None:
    cache = make_cache(f"redis://127.0.0.1:{free_port()}/0", use_l1=False, subscribe=False)
    for index in range(2):
        assert cache.get_or_compute("data", index, lambda: "computed", ttl=60).value == "computed"
        assert cache.breaker.snapshot().failures == index + 1
    assert l2_stats(cache) == (0, 0, 2)
    assert cache.stats().namespaces["data"].computations == 2


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def test_a_frozen_redis_costs_one_timeout_then_no_io(own_server: RedisServer, prefix: str) -> None:
    cache = TieredCache.from_url(own_server.url, prefix=prefix, use_l1=False, subscribe=False)
    try:
        cache.get_or_compute("data", "warm", lambda: 1, ttl=60)
        own_server.freeze()
        try:
            durations = []
            for index in range(10):
                started = time.perf_counter()
                value = cache.get_or_compute("data", index, lambda: "computed", ttl=60)
                durations.append(time.perf_counter() - started)
                assert value.value == "computed"
            assert 0.2 < durations[0] < 0.6, durations  # one socket timeout, no retries
            assert max(durations[1:]) < 0.05, durations
            assert cache.breaker.state is not BreakerState.CLOSED
            assert cache.stats().namespaces["data"].l2.errors == 1
        finally:
            own_server.thaw()
    finally:
        cache.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_with_requests_as_probes_each_probe_is_one_get(
    own_server: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after=2.0, clock=clock)
    cache = TieredCache.from_url(
        own_server.url,
        prefix=prefix,
        use_l1=False,
        subscribe=False,
        breaker=breaker,
        probe_in_background=False,
    )
    try:
        cache.set("data", "k", "stored", ttl=60)
        own_server.freeze()
        try:
            assert cache.get_or_compute("data", "k", lambda: "computed", ttl=60).value == "computed"
            assert breaker.state is BreakerState.OPEN  # a timeout opens at once
            clock.now = 2.0
            assert cache.get_or_compute("data", "k", lambda: "computed", ttl=60).value == "computed"
            assert breaker.state is BreakerState.OPEN  # the probe timed out too
        finally:
            own_server.thaw()
        assert cache.l2 is not None
        before = cache.l2.calls
        clock.now = 4.0
        assert cache.get_or_compute("data", "k", lambda: "x", ttl=60) == (
            "stored",
            CacheSource.HIT_L2,
        )
        assert cache.l2.calls == before + 1
        assert breaker.state is BreakerState.CLOSED
        assert l2_stats(cache) == (1, 0, 2)
    finally:
        cache.close()


def test_the_decorator_reads_l1_once_per_call(make_cache: MakeCache) -> None:
    cache = make_cache()

    @cached(namespace="data", ttl=60, cache=cache)
    def value(name: str) -> str:
        return name

    value("a")
    value("a")
    l1 = cache.stats().namespaces["data"].l1
    assert (l1.hits, l1.misses, l1.latency.count) == (1, 1, 2)


@pytest.mark.anyio
async def test_async_hits_misses_and_errors_are_counted_like_sync(
    l2_only: TieredCache, raw_redis: redis.Redis
) -> None:
    computed: list[int] = []

    @cached(namespace="data", ttl=60, cache=l2_only)
    async def load(name: str) -> list[str]:
        computed.append(1)
        return [name]

    try:
        assert await load("a") == ["a"]
        assert await load("a") == ["a"]
        assert last_cache_source.get() is CacheSource.HIT_L2
        assert computed == [1]
        assert l2_stats(l2_only) == (1, 1, 0)
        raw_redis.set(l2_only.entry_key("data", "k"), b"SC\x09garbage-garbage")
        found = await l2_only.aget_or_compute("data", "k", _fresh, ttl=60)
        assert found == ("fresh", CacheSource.MISS)
        assert l2_stats(l2_only) == (1, 1, 1)
    finally:
        await l2_only.aclose()


@pytest.mark.anyio
async def test_an_async_hit_does_not_wait_for_a_computation_in_flight(
    l2_only: TieredCache,
) -> None:
    try:
        await l2_only.aset("data", "k", "stored", ttl=60)
        entry_key = l2_only.entry_key("data", "k")
        leading, release = asyncio.Event(), asyncio.Event()

        async def slow() -> bool:
            leading.set()
            await release.wait()
            return True

        leader = asyncio.create_task(l2_only.aflow.flight.do(entry_key, slow))
        await leading.wait()
        found = await asyncio.wait_for(l2_only.aget_or_compute("data", "k", _fresh, ttl=60), 5)
        assert found == ("stored", CacheSource.HIT_L2)
        assert not leader.done()
        release.set()
        await leader
    finally:
        await l2_only.aclose()


@pytest.mark.anyio
async def test_an_async_call_on_a_refusing_redis_costs_one_failure(
    make_cache: MakeCache,
) -> None:
    cache = make_cache(f"redis://127.0.0.1:{free_port()}/0", use_l1=False, subscribe=False)
    try:
        for index in range(2):
            found = await cache.aget_or_compute("data", index, _fresh, ttl=60)
            assert found == ("fresh", CacheSource.MISS)
            assert cache.breaker.snapshot().failures == index + 1
        assert l2_stats(cache) == (0, 0, 2)
    finally:
        await cache.aclose()


@pytest.mark.anyio
async def test_async_l1_is_read_once_per_decorated_call(make_cache: MakeCache) -> None:
    cache = make_cache()

    @cached(namespace="data", ttl=60, cache=cache)
    async def value(name: str) -> str:
        return name

    try:
        await value("a")
        await value("a")
        l1 = cache.stats().namespaces["data"].l1
        assert (l1.hits, l1.misses) == (1, 1)
    finally:
        await cache.aclose()


async def _fresh() -> str:
    return "fresh"
