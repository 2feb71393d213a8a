"""The control flow's hard branches, each defined once and run on the sync and asyncio faces.

The lease's waiting branch, a caller's request as the breaker's probe, and
a fill interrupted in the middle (a cancelled task; for a thread, an
exception out of the computation) behave the same whichever face the
caller uses: the asyncio face is the source the sync one is generated from
(docs/decisions/0009-one-control-flow-generated-for-sync.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from salescast.cache import BreakerState, CacheSource, CircuitBreaker, Lookup, TieredCache
from tests.support.redis_server import RedisServer


class Interrupted(BaseException):
    """What interrupts a thread in the middle of a fill (as KeyboardInterrupt would)."""


class Face:
    """One test's calls, made through the sync or the asyncio methods of a cache."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.loop = asyncio.new_event_loop() if kind == "asyncio" else None
        self.caches: list[TieredCache] = []

    def cache(self, url: str, **options: Any) -> TieredCache:
        cache = TieredCache.from_url(url, subscribe=False, **options)
        self.caches.append(cache)
        return cache

    def lookup(
        self, cache: TieredCache, key: str, compute: Callable[[], Any], **options: Any
    ) -> Lookup[Any]:
        if self.loop is None:
            return cache.get_or_compute("data", key, compute, ttl=60, **options)

        async def acompute() -> Any:
            return compute()

        lookup = cache.aget_or_compute("data", key, acompute, ttl=60, **options)
        return self.loop.run_until_complete(lookup)

    def interrupt_fill(self, cache: TieredCache, key: str, during: Callable[[], None]) -> None:
        """Start a fill of ``key`` and interrupt it while it computes (after ``during()``)."""
        if self.loop is None:

            def compute() -> Any:
                during()
                raise Interrupted

            with pytest.raises(Interrupted):
                cache.get_or_compute("data", key, compute, ttl=60)
            return

        async def cancel_in_the_middle() -> None:
            computing = asyncio.Event()

            async def compute() -> Any:
                during()
                computing.set()
                await asyncio.Event().wait()  # never set: only the cancellation ends it

            task = asyncio.ensure_future(cache.aget_or_compute("data", key, compute, ttl=60))
            await computing.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        self.loop.run_until_complete(cancel_in_the_middle())

    def in_flight(self, cache: TieredCache) -> int:
        flight = cache.flow.flight if self.loop is None else cache.aflow.flight
        return flight.in_flight()

    def close(self) -> None:
        for cache in self.caches:
            if self.loop is not None and cache.l2 is not None:
                self.loop.run_until_complete(cache.l2.aclose())
            cache.close()
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=["sync", "asyncio"])
def face(request: pytest.FixtureRequest) -> Iterator[Face]:
    face = Face(request.param)
    yield face
    face.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_that_finds_the_lease_taken_waits_for_the_owners_value(
    face: Face, redis_server: RedisServer, raw_redis: redis.Redis, prefix: str
) -> None:
    owner = face.cache(redis_server.url, prefix=prefix)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:  # the owner is done: it stores its value, then releases
            assert owner.set("data", "k", "the owner's", ttl=60)
            raw_redis.delete(lease_key)

    async def asleep(seconds: float) -> None:
        sleep(seconds)

    waiter = face.cache(redis_server.url, prefix=prefix, sleep=sleep, asleep=asleep)
    lease_key = waiter.keys.lease_key(waiter.entry_key("data", "k"))
    raw_redis.set(lease_key, b"another process", px=60_000)
    computed: list[str] = []

    found = face.lookup(waiter, "k", lambda: computed.append("k") or "mine")

    assert found == ("the owner's", CacheSource.HIT_L2)
    assert computed == []
    # The poll backs off 1.5x per round, through the injected sleep on both faces.
    assert slept == pytest.approx([0.02, 0.03, 0.045])


def test_a_waiter_whose_lease_owner_gave_up_takes_the_lease_and_computes_once(
    face: Face, redis_server: RedisServer, raw_redis: redis.Redis, prefix: str
) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:  # the owner failed: its lease goes, no value came
            raw_redis.delete(lease_key)

    async def asleep(seconds: float) -> None:
        sleep(seconds)

    waiter = face.cache(redis_server.url, prefix=prefix, sleep=sleep, asleep=asleep)
    lease_key = waiter.keys.lease_key(waiter.entry_key("data", "k"))
    raw_redis.set(lease_key, b"another process", px=60_000)
    held_while_computing: list[bytes | None] = []

    def compute() -> str:
        held_while_computing.append(raw_redis.get(lease_key))
        return "mine"

    assert face.lookup(waiter, "k", compute) == ("mine", CacheSource.MISS)
    assert len(slept) == 2
    assert len(held_while_computing) == 1
    assert held_while_computing[0] not in (None, b"another process")  # the waiter's own token
    assert raw_redis.exists(lease_key) == 0  # released after the value was stored
    assert raw_redis.exists(waiter.entry_key("data", "k")) == 1


def test_after_the_pause_a_callers_request_probes_and_closes_the_breaker(
    face: Face, prefix: str
) -> None:
    clock = FakeClock()
    with RedisServer() as server:
        breaker = CircuitBreaker(failure_threshold=3, reset_after=2.0, clock=clock)
        cache = face.cache(server.url, prefix=prefix, breaker=breaker, probe_in_background=False)
        server.kill()
        for index in range(3):
            assert face.lookup(cache, f"down{index}", lambda i=index: i).source is CacheSource.MISS
        assert cache.breaker.state is BreakerState.OPEN
        assert cache.l2 is not None
        calls = cache.l2.calls
        assert face.lookup(cache, "open", lambda: "computed").value == "computed"
        assert cache.l2.calls == calls  # open: no I/O at all

        server.restart()
        clock.now += 2.0
        assert face.lookup(cache, "probe", lambda: "probed") == ("probed", CacheSource.MISS)

        assert cache.breaker.state is BreakerState.CLOSED
        assert cache.breaker.snapshot().probes == 1
        assert cache.l1 is not None
        cache.l1.clear()
        assert face.lookup(cache, "probe", lambda: "again") == ("probed", CacheSource.HIT_L2)


def test_a_fill_interrupted_in_the_middle_releases_its_lease_and_the_key(
    face: Face, redis_server: RedisServer, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = face.cache(redis_server.url, prefix=prefix)
    lease_key = cache.keys.lease_key(cache.entry_key("data", "k"))
    held: list[int] = []

    face.interrupt_fill(cache, "k", during=lambda: held.append(raw_redis.exists(lease_key)))

    assert held == [1]  # it was computing under the lease
    assert raw_redis.exists(lease_key) == 0
    assert face.in_flight(cache) == 0
    assert cache.breaker.state is BreakerState.CLOSED
    assert face.lookup(cache, "k", lambda: "after") == ("after", CacheSource.MISS)
    assert face.lookup(cache, "k", lambda: "again") == ("after", CacheSource.HIT_L1)
