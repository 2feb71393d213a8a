"""Several processes on one Redis: one computation per cold key, invalidations heard by all."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import pytest
import redis

from salescast.cache import CacheSource, TieredCache
from tests.cache.polling import eventually
from tests.cache.workers import command_worker, stampede_worker
from tests.support.redis_server import RedisServer

SPAWN = multiprocessing.get_context("spawn")
MakeCache = Callable[..., TieredCache]


def test_four_processes_of_ten_callers_compute_a_cold_key_once(
    redis_server: RedisServer, raw_redis: redis.Redis, prefix: str
) -> None:
    counter_key = f"{prefix}-computations"
    go = SPAWN.Event()
    results = SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=stampede_worker,
            args=(redis_server.url, prefix, counter_key, go, 10, results),
        )
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    try:
        # Release all 40 callers together, once every process is subscribed.
        assert [results.get(timeout=30) for _ in processes] == ["ready"] * 4
        go.set()
        sources = [source for _ in processes for source in results.get(timeout=30)]
    finally:
        for process in processes:
            process.join(timeout=30)
        results.close()
        results.join_thread()
    assert all(process.exitcode == 0 for process in processes)
    assert len(sources) == 40
    assert {source.split("/")[0] for source in sources} == {"computed"}
    # One process computed (its 10 callers shared the run); the others read L2.
    assert sorted(source.split("/")[1] for source in sources) == ["HIT-L2"] * 30 + ["MISS"] * 10
    assert int(raw_redis.get(counter_key) or 0) == 1
    raw_redis.delete(counter_key)


@pytest.fixture
def other_worker(redis_server: RedisServer, prefix: str) -> Iterator[Callable[..., Any]]:
    parent, child = SPAWN.Pipe()
    process = SPAWN.Process(target=command_worker, args=(redis_server.url, prefix, child))
    process.start()
    child.close()
    assert parent.poll(30)
    assert parent.recv() is True

    def ask(command: str, *args: Any) -> Any:
        parent.send((command, args))
        assert parent.poll(10)
        return parent.recv()

    yield ask
    _stop(parent, process)


def _stop(conn: Connection, process: Any) -> None:
    conn.send(("stop", ()))
    process.join(timeout=10)
    conn.close()
    assert process.exitcode == 0


def test_invalidate_tag_in_one_process_empties_that_tag_from_another_process_l1(
    make_cache: MakeCache, other_worker: Callable[..., Any]
) -> None:
    here = make_cache()
    tags = ("product:p1",)
    here.get_or_compute("prediction", "forecast", lambda: "old", ttl=60, tags=tags)
    assert other_worker("get_or_compute", "prediction", "forecast", "x", tags) == (
        "old",
        "HIT-L2",
    )
    assert other_worker("get_or_compute", "prediction", "forecast", "x", tags)[1] == "HIT-L1"
    assert other_worker("l1_entries") == 1
    here.invalidate_tag("product:p1")
    assert eventually(lambda: other_worker("l1_entries") == 0)
    assert other_worker("get_or_compute", "prediction", "forecast", "new", tags) == (
        "new",
        "MISS",
    )
    assert here.get("prediction", "forecast", tags=tags).value == "new"


def test_a_process_whose_subscription_is_killed_empties_its_l1_on_reconnect(
    make_cache: MakeCache, other_worker: Callable[..., Any], raw_redis: redis.Redis
) -> None:
    here = make_cache()
    here.set("data", "k", "v", ttl=60)
    assert other_worker("get_or_compute", "data", "k", "x", ())[1] == "HIT-L2"
    assert other_worker("l1_entries") == 1
    state, subscriptions = other_worker("subscription")
    assert (state, subscriptions) == ("subscribed", 1)
    raw_redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert eventually(lambda: other_worker("subscription") == ("subscribed", 2))
    assert other_worker("l1_entries") == 0
    assert here.wait_subscribed(5.0)
    assert here.get("data", "k").source is CacheSource.HIT_L2
