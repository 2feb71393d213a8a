"""100 concurrent requests for one cold forecast over two workers: how many Prophet runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.reliability.redis.figures import REDIS_LINES
from tests.reliability.redis.workers import FRESH, computations, stats_by_worker
from tests.reliability.servers import server_env
from tests.support.redis_server import RedisServer, free_port
from tests.support.uvicorn_server import UvicornServer

PRODUCT = "CA_1-FOODS_3"
CALLERS = 100


def burst(base_url: str, path: str, callers: int) -> list[tuple[int, str]]:
    """`callers` threads released together, each sending one GET on its own connection."""
    gate = threading.Barrier(callers)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def call() -> None:
        with httpx.Client(timeout=120, headers=FRESH) as client:
            gate.wait()
            response = client.get(base_url + path)
        with lock:
            results.append((response.status_code, response.headers.get("x-cache", "")))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return results


@pytest.fixture
def redis_for_stampede() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def run_stampede(
    database_url: str, redis_url: str, label: str
) -> tuple[int, list[tuple[int, str]]]:
    env = server_env(database_url, SALESCAST_REDIS_URL=redis_url)
    with UvicornServer(env, workers=2) as server:
        assert len(stats_by_worker(server.url)) == 2, server.log_text()[-2000:]
        results = burst(server.url, f"/products/{PRODUCT}/forecast?horizon=45", CALLERS)
        runs = computations(stats_by_worker(server.url))
    statuses = sorted({status for status, _ in results})
    misses = sum(source == "MISS" for _, source in results)
    REDIS_LINES.append(
        f"stampede, {label}: {CALLERS} concurrent callers over 2 workers -> {runs} "
        f"computation(s), statuses {statuses}, {misses} answered MISS"
    )
    return runs, results


def test_a_cold_forecast_asked_100_times_at_once_is_computed_once(
    demo_database_url: str, redis_for_stampede: RedisServer
) -> None:
    runs, results = run_stampede(demo_database_url, redis_for_stampede.url, "Redis up")
    assert [status for status, _ in results] == [200] * CALLERS
    assert runs == 1


@pytest.mark.chaos
def test_with_redis_down_each_worker_computes_at_most_once(demo_database_url: str) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    runs, results = run_stampede(demo_database_url, nowhere, "Redis down")
    assert [status for status, _ in results] == [200] * CALLERS
    assert 1 <= runs <= 2
