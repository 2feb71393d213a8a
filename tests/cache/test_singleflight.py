"""Concurrent misses of one key in one process share one computation (threads and asyncio)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import anyio
import pytest

from salescast.cache import CacheSource, TieredCache
from salescast.cache.singleflight import AsyncSingleFlight, SingleFlight

MakeCache = Callable[..., TieredCache]


def test_twenty_threads_on_a_cold_key_compute_once(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls: list[int] = []
    barrier = threading.Barrier(20)
    results: list[object] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        time.sleep(0.1)
        return {"v": 1}

    def worker() -> None:
        barrier.wait()
        results.append(cache.get_or_compute("data", "cold", compute, ttl=60).value)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert results == [{"v": 1}] * 20


def test_an_exception_reaches_every_waiting_caller_and_is_not_cached() -> None:
    flight = SingleFlight()
    errors: list[BaseException] = []
    started = threading.Event()

    def failing() -> int:
        started.set()
        time.sleep(0.05)
        raise RuntimeError("compute failed")

    def call() -> None:
        try:
            flight.do("k", failing)
        except RuntimeError as exc:
            errors.append(exc)

    leader = threading.Thread(target=call)
    leader.start()
    started.wait()
    follower = threading.Thread(target=call)
    follower.start()
    leader.join()
    follower.join()
    assert len(errors) == 2
    assert flight.in_flight() == 0
    assert flight.do("k", lambda: 5) == (5, True)


@pytest.mark.anyio
async def test_twenty_tasks_on_a_cold_key_compute_once(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls: list[int] = []
    sources: list[CacheSource] = []

    async def compute() -> str:
        calls.append(1)
        await anyio.sleep(0.05)
        return "value"

    async def worker() -> None:
        lookup = await cache.aget_or_compute("data", "cold", compute, ttl=60)
        assert lookup.value == "value"
        sources.append(lookup.source)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(worker)
    assert len(calls) == 1
    assert sources.count(CacheSource.MISS) == 20
    assert (await cache.aget_or_compute("data", "cold", compute, ttl=60)).source == "HIT-L1"
    await cache.aclose()


@pytest.mark.anyio
async def test_followers_of_a_cancelled_leader_run_the_computation_themselves() -> None:
    flight = AsyncSingleFlight()
    started = anyio.Event()
    runs: list[str] = []

    async def slow(name: str) -> str:
        runs.append(name)
        started.set()
        await anyio.sleep(0.1)
        return name

    results: list[tuple[str, bool]] = []

    async def follower() -> None:
        await started.wait()
        results.append(await flight.do("k", lambda: slow("follower")))

    async with anyio.create_task_group() as group:
        group.start_soon(follower)
        group.start_soon(follower)
        with anyio.move_on_after(0.03):
            await flight.do("k", lambda: slow("leader"))
    assert runs == ["leader", "follower"]
    assert sorted(results) == [("follower", False), ("follower", True)]
