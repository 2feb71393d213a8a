"""Redis killed, frozen (SIGSTOP) and restarted: callers never see an exception, and once
the breaker is open they pay no Redis time and cause no Redis I/O."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from salescast.cache import BreakerState, CacheSource, CircuitBreaker, RedisCache, TieredCache
from tests.cache.polling import eventually
from tests.support.redis_server import RedisServer

OPEN_CALL_BOUND = 0.05  # seconds; generous, an open-breaker call does no I/O


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(server: RedisServer, prefix: str, clock: FakeClock) -> Iterator[TieredCache]:
    """Probes are callers' requests here, so the tests see them happen."""
    breaker = CircuitBreaker(failure_threshold=3, reset_after=2.0, clock=clock)
    cache = TieredCache.from_url(
        server.url, prefix=prefix, breaker=breaker, subscribe=False, probe_in_background=False
    )
    yield cache
    cache.close()


@pytest.fixture
def default_cache(server: RedisServer, prefix: str, clock: FakeClock) -> Iterator[TieredCache]:
    """The default: the breaker probes with a PING on a thread of its own."""
    breaker = CircuitBreaker(failure_threshold=3, reset_after=2.0, clock=clock)
    cache = TieredCache.from_url(server.url, prefix=prefix, breaker=breaker, subscribe=False)
    yield cache
    cache.close()


def wait_for_probe(cache: TieredCache, probes: int = 1) -> None:
    """Until the background probe has run and the breaker has settled on its answer."""
    assert eventually(
        lambda: (
            cache.breaker.snapshot().probes == probes
            and cache.breaker.state is not BreakerState.HALF_OPEN
        ),
        timeout=5.0,
    )


def assert_one_timeout_then_open(cache: TieredCache, durations: list[float]) -> None:
    """The first call waited one socket timeout (never redis-py's retries), the
    rest none; the background probe timed out too, so the breaker is open."""
    assert 0.2 < durations[0] < 0.6, durations
    assert max(durations[1:]) < OPEN_CALL_BOUND, durations
    wait_for_probe(cache)
    assert cache.breaker.state is BreakerState.OPEN


def timed_calls(cache: TieredCache, count: int, start: int = 0) -> list[float]:
    """``count`` lookups of fresh keys (each must compute); returns each call's seconds."""
    durations = []
    for index in range(start, start + count):
        started = time.perf_counter()
        value, source = cache.get_or_compute("data", ("k", index), lambda i=index: i, ttl=60)
        durations.append(time.perf_counter() - started)
        assert source is CacheSource.MISS
        assert value == index
    return durations


def assert_open_and_silent(cache: TieredCache, start: int = 1000) -> None:
    """While open: calls are fast and the backend's I/O counter does not move."""
    assert cache.l2 is not None
    assert cache.breaker.state is BreakerState.OPEN
    calls_before = cache.l2.calls
    durations = timed_calls(cache, 50, start=start)
    assert max(durations) < OPEN_CALL_BOUND
    assert cache.l2.calls == calls_before
    assert cache.get_or_compute("data", ("k", start), lambda: -1, ttl=60).source is (
        CacheSource.HIT_L1
    )


def test_killed_redis_opens_the_breaker_and_costs_nothing_after(
    cache: TieredCache, server: RedisServer
) -> None:
    timed_calls(cache, 3)
    server.kill()
    durations = timed_calls(cache, 3, start=100)
    assert max(durations) < 0.6  # refused connections fail at once; bound is the timeout
    assert_open_and_silent(cache)
    stats = cache.stats()
    assert stats.breaker is not None
    assert stats.breaker.opened == 1
    assert stats.namespaces["data"].l2.errors == 3


def test_frozen_redis_costs_one_timeout_then_nothing(
    default_cache: TieredCache, server: RedisServer
) -> None:
    cache = default_cache
    timed_calls(cache, 2)
    server.freeze()
    try:
        durations = timed_calls(cache, 20, start=100)
        # The timeout opens the breaker at once, and the probe due at once is
        # a PING on its own thread.
        assert_one_timeout_then_open(cache, durations)
        assert_open_and_silent(cache)
        assert cache.stats().namespaces["data"].l2.errors == 1
    finally:
        server.thaw()


def test_a_redis_that_was_slow_once_is_used_again_after_one_probe(
    default_cache: TieredCache, server: RedisServer
) -> None:
    # A healthy Redis that misses one reply (a fork for a snapshot, one slow
    # command) loses its callers for one probe's round trip, not for a pause.
    cache = default_cache
    cache.set("data", "warm", 1, ttl=60)
    server.freeze()
    try:
        assert 0.2 < timed_calls(cache, 1, start=100)[0] < 0.6
        assert cache.breaker.state is BreakerState.OPEN
    finally:
        server.thaw()
    timed_calls(cache, 1, start=101)  # skips L2 and starts the probe
    wait_for_probe(cache)
    assert cache.breaker.state is BreakerState.CLOSED
    assert cache.l1 is not None
    cache.l1.clear()
    assert cache.get("data", "warm").source is CacheSource.HIT_L2


def test_with_requests_as_probes_a_frozen_redis_costs_two_timeouts(
    cache: TieredCache, server: RedisServer
) -> None:
    timed_calls(cache, 2)
    server.freeze()
    try:
        durations = timed_calls(cache, 3, start=100)
        # The first call times out and opens the breaker with the probe due at
        # once; the second call is that probe and times out too; then the pause.
        assert all(0.2 < duration < 0.6 for duration in durations[:2]), durations
        assert durations[2] < OPEN_CALL_BOUND, durations
        assert cache.breaker.snapshot().probes == 1
        assert_open_and_silent(cache)
    finally:
        server.thaw()


def test_tagged_lookups_also_pay_one_timeout_when_redis_freezes(
    default_cache: TieredCache, server: RedisServer
) -> None:
    cache = default_cache
    server.freeze()
    try:
        durations = []
        for index in range(3):
            started = time.perf_counter()
            lookup = cache.get_or_compute(
                "data", index, lambda i=index: i, ttl=60, tags=[f"product:{index}"]
            )
            durations.append(time.perf_counter() - started)
            assert lookup == (index, CacheSource.MISS)
        # Reading the tag's generation timed out; the call then spared Redis,
        # and the breaker spared the next ones.
        assert_one_timeout_then_open(cache, durations)
    finally:
        server.thaw()


def test_one_probe_after_the_pause_closes_the_breaker_when_redis_is_back(
    cache: TieredCache, server: RedisServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="salescast.cache")
    server.kill()
    timed_calls(cache, 3)
    assert_open_and_silent(cache)
    server.restart()
    clock.now += 1.0
    assert_open_and_silent(cache, start=2000)  # the pause is not over: still no I/O
    clock.now += 1.5
    timed_calls(cache, 1, start=500)  # the probe (and its write) reach Redis
    assert cache.breaker.state is BreakerState.CLOSED
    assert cache.l1 is not None
    cache.l1.clear()
    assert cache.get("data", ("k", 500)).source is CacheSource.HIT_L2
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 4, lines  # lost, open, probe, back: once each despite ~100 calls


def test_a_failed_probe_keeps_the_breaker_open_without_further_io(
    cache: TieredCache, server: RedisServer, clock: FakeClock
) -> None:
    server.kill()
    timed_calls(cache, 3)
    clock.now += 2.0
    timed_calls(cache, 1, start=10)  # the probe fails
    assert cache.breaker.state is BreakerState.OPEN
    assert cache.breaker.snapshot().probes == 1
    assert_open_and_silent(cache)


@pytest.mark.anyio
async def test_async_callers_see_the_same_fail_open_behaviour(
    cache: TieredCache, server: RedisServer
) -> None:
    server.kill()
    for index in range(3):
        value, source = await cache.aget_or_compute(
            "data", index, lambda i=index: _async_value(i), ttl=60
        )
        assert (value, source) == (index, CacheSource.MISS)
    assert cache.breaker.state is BreakerState.OPEN
    assert cache.l2 is not None
    calls_before = cache.l2.calls
    started = time.perf_counter()
    assert (await cache.aget_or_compute("data", 0, lambda: _async_value(-1), ttl=60)).value == 0
    assert time.perf_counter() - started < OPEN_CALL_BOUND
    assert cache.l2.calls == calls_before
    await cache.aclose()


@pytest.mark.anyio
async def test_async_callers_also_pay_one_timeout_when_redis_freezes(
    default_cache: TieredCache, server: RedisServer
) -> None:
    cache = default_cache
    await cache.aget_or_compute("data", "warm", lambda: _async_value(0), ttl=60)
    server.freeze()
    try:
        durations = []
        for index in range(10):
            started = time.perf_counter()
            lookup = await cache.aget_or_compute(
                "data", index, lambda i=index: _async_value(i), ttl=60
            )
            durations.append(time.perf_counter() - started)
            assert lookup == (index, CacheSource.MISS)
        assert_one_timeout_then_open(cache, durations)
    finally:
        server.thaw()
    await cache.aclose()


async def _async_value(value: int) -> int:
    return value


def test_redis_cache_never_raises_when_redis_is_gone(server: RedisServer, prefix: str) -> None:
    with RedisCache.from_url(server.url, prefix=prefix) as cache:
        assert cache.set("k", {"a": 1}, ttl=60) is True
        server.kill()
        for _ in range(5):
            assert cache.get("k") is None
            assert cache.set("k", 2, ttl=60) is False
            assert cache.exists("k") is False
            assert cache.expire("k", 10) is False
            assert cache.delete("k") is False
        assert cache.clear() == 0
        health = cache.health()
        assert health.redis_reachable is False
        assert health.breaker_state == "open"
        stats = cache.stats().namespaces["kv"]
        assert stats.l2.errors == 3  # get, set, exists: then the breaker opened
        assert stats.l2.skipped >= 9  # 4 gets, 4 sets, 1 expire, without I/O
        assert stats.misses == 5


def test_subscription_notices_a_frozen_server_and_empties_l1_when_it_is_back(
    server: RedisServer, prefix: str
) -> None:
    cache = TieredCache.from_url(server.url, prefix=prefix, ping_interval=0.2)
    try:
        assert cache.wait_subscribed(5.0)
        assert cache.subscriber is not None
        subscriber = cache.subscriber
        cache.set("data", "k", 1, ttl=60)
        assert cache.l1 is not None
        server.freeze()
        try:
            assert eventually(lambda: subscriber.state == "lost", timeout=5.0)
        finally:
            server.thaw()
        assert eventually(
            lambda: subscriber.state == "subscribed" and subscriber.resubscriptions == 2,
            timeout=10.0,
        )
        assert cache.l1.usage().entries == 0
    finally:
        cache.close()


def test_a_silent_subscription_opens_the_breaker_before_a_warm_lookup_waits_on_redis(
    server: RedisServer, prefix: str
) -> None:
    # The common frozen-Redis case in a server: every key in L1, the tag
    # generations trusted while the subscription is live, so the first sign
    # of trouble is the subscription's unanswered PING. It must open the
    # breaker before it stops trusting the generations; otherwise the next
    # lookups re-read them from the frozen Redis and each waits a timeout.
    breaker = CircuitBreaker(failure_threshold=3, reset_after=60.0)  # no probe in this test
    cache = TieredCache.from_url(
        server.url, prefix=prefix, breaker=breaker, ping_interval=0.2, generation_ttl=0.05
    )
    try:
        assert cache.wait_subscribed(5.0)
        assert cache.subscriber is not None
        assert cache.l2 is not None
        subscriber, l2 = cache.subscriber, cache.l2
        keys = range(8)
        for index in keys:
            cache.get_or_compute("data", index, lambda i=index: i, ttl=60, tags=[f"p:{index}"])
        calls_before = l2.calls
        server.freeze()
        try:
            lookups, slow, sources = 0, 0, set()
            lost_at: float | None = None
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                for index in keys:
                    started = time.perf_counter()
                    value, source = cache.get_or_compute(
                        "data", index, lambda: -1, ttl=60, tags=[f"p:{index}"]
                    )
                    slow += time.perf_counter() - started > 0.2
                    lookups += 1
                    sources.add(source)
                    assert value == index
                if lost_at is None and subscriber.state == "lost":
                    lost_at = time.monotonic()
                if lost_at is not None and time.monotonic() - lost_at > 0.5:
                    break  # well past generation_ttl: every generation was asked for
            assert lost_at is not None, "the subscription did not notice the frozen server"
            assert sources == {CacheSource.HIT_L1}
            assert breaker.state is BreakerState.OPEN
            assert breaker.snapshot().opened == 1
            assert l2.calls == calls_before, "a lookup went to the frozen Redis"
            assert slow == 0, f"{slow} of {lookups} lookups waited on Redis"
        finally:
            server.thaw()
    finally:
        cache.close()
