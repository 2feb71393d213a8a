"""Idle lifetimes (IdleTTL): hits renew entries, a maximum bounds them, hot ones are
refreshed once, in the background, while their value is served.

L1 and the entries' age run on injected clocks so that hours pass in a step;
Redis is a real server, whose own TTLs are checked with PTTL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from salescast.cache import (
    CacheSource,
    IdleTTL,
    MemoryBackend,
    RedisBackend,
    TieredCache,
)
from salescast.cache.frames import FrameSerializer, frame_times
from salescast.cache.lifetime import LifetimePolicy, Verdict
from tests.support.redis_server import RedisServer

IDLE = IdleTTL(100.0)


class Clock:
    """Seconds that move only when a test moves them."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Counter:
    """A computation that says how often it ran, and can be held mid-run."""

    def __init__(self) -> None:
        self.calls = 0
        self.hold: threading.Event | None = None
        self.started = threading.Event()  # set by a run that waits on `hold`

    def __call__(self) -> str:
        self.calls += 1
        if self.hold is not None:
            self.started.set()
            assert self.hold.wait(10)
        return f"value {self.calls}"

    async def acompute(self) -> str:
        return self()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_tiered(
    redis_server: RedisServer, prefix: str, clock: Clock
) -> Iterator[Callable[..., TieredCache]]:
    """TieredCaches whose L1 and entry ages follow ``clock`` (Redis: the session server)."""
    made: list[TieredCache] = []

    def make(*, with_redis: bool = True, **options: Any) -> TieredCache:
        options.setdefault("max_lifetime", 1_000.0)
        options.setdefault("stale_window", 200.0)
        cache = TieredCache(
            l2=RedisBackend(redis_server.url) if with_redis else None,
            l1=MemoryBackend(clock=clock),
            prefix=prefix,
            wall_clock=clock,
            **options,
        )
        made.append(cache)
        if with_redis:
            assert cache.wait_subscribed(5.0)
        return cache

    yield make
    for cache in made:
        cache.close()


def lookup(cache: TieredCache, compute: Counter, key: str = "k") -> tuple[Any, CacheSource]:
    found = cache.get_or_compute("prediction", key, compute, ttl=IDLE, tags=["product:p"])
    return found.value, found.source


# -- idle lifetime -------------------------------------------------------------


def test_hits_keep_a_sliding_entry_past_its_idle_time_and_a_fixed_one_expires(
    make_tiered: Callable[..., TieredCache], clock: Clock
) -> None:
    cache = make_tiered(with_redis=False)
    sliding, fixed = Counter(), Counter()
    lookup(cache, sliding)
    cache.get_or_compute("prediction", "fixed", fixed, ttl=100.0)
    for _ in range(5):  # 300 s in all, a hit every 60 s: never 100 s idle
        clock.advance(60)
        assert lookup(cache, sliding) == ("value 1", CacheSource.HIT_L1)
        cache.get_or_compute("prediction", "fixed", fixed, ttl=100.0)
    assert sliding.calls == 1
    assert fixed.calls == 3  # computed again at 120 s and at 240 s


def test_an_entry_left_idle_for_its_idle_time_is_gone(
    make_tiered: Callable[..., TieredCache], clock: Clock
) -> None:
    cache = make_tiered(with_redis=False)
    compute = Counter()
    lookup(cache, compute)
    clock.advance(99)
    assert lookup(cache, compute)[1] is CacheSource.HIT_L1
    clock.advance(101)  # the hit at 99 s renewed it until 199 s at the most
    assert lookup(cache, compute) == ("value 2", CacheSource.MISS)


def test_no_hit_keeps_an_entry_past_its_maximum_and_stale_window(
    make_tiered: Callable[..., TieredCache], clock: Clock
) -> None:
    cache = make_tiered(with_redis=False, max_lifetime=300.0, stale_window=0.0)
    compute = Counter()
    lookup(cache, compute)
    for _ in range(7):  # 280 s, a hit every 40 s
        clock.advance(40)
        assert lookup(cache, compute)[1] is CacheSource.HIT_L1
    clock.advance(40)  # 320 s: past the maximum, and no stale window
    assert lookup(cache, compute) == ("value 2", CacheSource.MISS)


def test_a_hit_that_renews_l1_renews_the_redis_entry_in_the_background(
    make_tiered: Callable[..., TieredCache], raw_redis: redis.Redis, clock: Clock
) -> None:
    cache = make_tiered()
    compute = Counter()
    lookup(cache, compute)
    [key] = raw_redis.keys(f"{cache.keys.prefix}:prediction:*")
    assert 99_000 < raw_redis.pttl(key) <= 100_000  # the idle time
    raw_redis.pexpire(key, 5_000)  # as if most of it had passed
    clock.advance(60)  # less than half of L1's idle time left: this hit renews
    assert lookup(cache, compute)[1] is CacheSource.HIT_L1
    assert cache.background.wait_idle()
    assert 99_000 < raw_redis.pttl(key) <= 100_000
    clock.advance(10)  # renewed just now: the next hits send nothing
    raw_redis.pexpire(key, 5_000)
    lookup(cache, compute)
    assert cache.background.wait_idle()
    assert raw_redis.pttl(key) <= 5_000


def test_a_read_from_redis_renews_an_entry_with_less_than_half_its_idle_time_left(
    make_tiered: Callable[..., TieredCache], raw_redis: redis.Redis
) -> None:
    writer, reader = make_tiered(), make_tiered()
    compute = Counter()
    lookup(writer, compute)
    [key] = raw_redis.keys(f"{writer.keys.prefix}:prediction:*")
    raw_redis.pexpire(key, 30_000)
    assert lookup(reader, compute) == ("value 1", CacheSource.HIT_L2)
    assert reader.background.wait_idle()
    assert 99_000 < raw_redis.pttl(key) <= 100_000
    assert compute.calls == 1


# -- refreshes near and after the maximum ---------------------------------------


def test_past_the_maximum_the_value_is_served_while_one_background_refresh_runs(
    make_tiered: Callable[..., TieredCache], clock: Clock
) -> None:
    cache = make_tiered(with_redis=False)
    compute = Counter()
    lookup(cache, compute)
    for _ in range(24):  # hot: a hit every 40 s, up to 960 s
        clock.advance(40)
        assert lookup(cache, compute)[1] is CacheSource.HIT_L1
    clock.advance(60)  # 1,020 s: past the maximum (1,000 s), in the stale window
    compute.hold = threading.Event()
    assert lookup(cache, compute) == ("value 1", CacheSource.HIT_L1)
    assert compute.started.wait(5)
    for _ in range(3):  # the refresh is running: readers keep the value they had
        assert lookup(cache, compute) == ("value 1", CacheSource.HIT_L1)
    compute.hold.set()
    assert cache.background.wait_idle()
    assert lookup(cache, compute) == ("value 2", CacheSource.HIT_L1)
    assert compute.calls == 2
    assert cache.stats().namespaces["prediction"].refreshes == 1


def test_two_processes_on_one_redis_refresh_a_stale_entry_once(
    make_tiered: Callable[..., TieredCache], clock: Clock
) -> None:
    first, second = make_tiered(), make_tiered()
    compute = Counter()
    lookup(first, compute)
    assert lookup(second, compute) == ("value 1", CacheSource.HIT_L2)
    clock.advance(1_050)  # past the maximum, in the stale window (L1 copies idled out)
    compute.hold = threading.Event()
    served = [lookup(first, compute)]
    assert compute.started.wait(5)  # the first process holds the lease and computes
    served.append(lookup(second, compute))
    compute.hold.set()
    assert first.background.wait_idle()
    assert second.background.wait_idle()
    assert [value for value, _ in served] == ["value 1", "value 1"]
    assert compute.calls == 2  # the first computation and one refresh, across both


def test_an_invalidated_entry_is_never_served_stale(
    make_tiered: Callable[..., TieredCache], clock: Clock
) -> None:
    cache = make_tiered()
    compute = Counter()
    lookup(cache, compute)
    clock.advance(1_050)
    cache.invalidate_tag("product:p")  # a retrain: the entry's version is superseded
    assert lookup(cache, compute) == ("value 2", CacheSource.MISS)


@pytest.mark.anyio
async def test_the_asyncio_face_serves_a_stale_value_and_refreshes_it_in_a_task(
    make_tiered: Callable[..., TieredCache], clock: Clock
) -> None:
    cache = make_tiered()
    compute = Counter()

    async def alookup() -> tuple[Any, CacheSource]:
        found = await cache.aget_or_compute(
            "prediction", "k", compute.acompute, ttl=IDLE, tags=["product:p"]
        )
        return found.value, found.source

    await alookup()
    clock.advance(1_050)
    cache.l1.clear()  # a worker that only has Redis's copy
    assert await alookup() == ("value 1", CacheSource.HIT_L2)
    await cache.abackground.wait_idle()
    assert compute.calls == 2
    assert await alookup() == ("value 2", CacheSource.HIT_L1)
    await cache.aclose()


# -- the policy and the frame's times --------------------------------------------


def test_frames_carry_when_their_value_was_computed_and_how_long_that_took() -> None:
    frame = FrameSerializer(wall_clock=lambda: 1_700_000_123.9).dumps(
        "k", {"a": 1}, compute_seconds=0.25
    )
    assert frame_times(frame) == (1_700_000_123.0, 0.25)


def test_xfetch_refreshes_earlier_for_values_that_take_longer_to_compute() -> None:
    policy = LifetimePolicy(max_lifetime=1_000.0, stale_window=100.0)
    quick, slow = frame_times_of(0.001), frame_times_of(30.0)

    def share_refreshed(times: Any, at: float) -> float:
        verdicts = [policy.verdict(times, at) for _ in range(2_000)]
        return verdicts.count(Verdict.REFRESH) / len(verdicts)

    assert share_refreshed(quick, 970.0) == 0.0
    assert 0.3 < share_refreshed(slow, 970.0) < 0.5  # exp(-30 / 30) = 0.37
    assert share_refreshed(slow, 900.0) < 0.05
    assert share_refreshed(quick, 1_050.0) == 1.0  # stale window: always refresh
    assert {policy.verdict(quick, 1_100.0) for _ in range(10)} == {Verdict.EXPIRED}


def frame_times_of(compute_seconds: float) -> Any:
    return frame_times(
        FrameSerializer(wall_clock=lambda: 0.0).dumps("k", 1, compute_seconds=compute_seconds)
    )
