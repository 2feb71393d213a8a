"""No stale forecasts: readers on two workers while a writer retrains, rolls back and ingests.

Each forecast's `model_version` is checked against the registry's active
version at the time the request was sent (staleness.py). Pub/sub connections
are killed and Redis is restarted from a snapshot holding the old versions'
entries along the way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.reliability.redis.figures import REDIS_LINES
from tests.reliability.redis.load import LoadLoop
from tests.reliability.redis.staleness import ADMIN, Change, activate, violations
from tests.reliability.servers import server_env
from tests.support.redis_server import RedisServer
from tests.support.uvicorn_server import UvicornServer

PRODUCTS = ["CA_1-FOODS_3", "CA_3-FOODS_3", "WI_3-FOODS_2"]


@pytest.fixture
def server(demo_database_url: str, own_redis: RedisServer) -> Iterator[UvicornServer]:
    env = server_env(demo_database_url, SALESCAST_REDIS_URL=own_redis.url)
    with UvicornServer(env, workers=2) as running:
        for product in PRODUCTS:  # a second version to roll back and forth between
            trained = httpx.post(
                f"{running.url}/products/{product}/train", headers=ADMIN, timeout=120
            )
            assert trained.status_code == 201, trained.text
        yield running


def ingest(base: str, product: str, day: int, version: int) -> Change:
    began = time.monotonic()
    rows = [{"date": f"2016-05-{day:02d}", "product_id": product, "quantity": day}]
    response = httpx.post(f"{base}/sales?mode=replace", json=rows, headers=ADMIN)
    assert response.status_code == 201, response.text
    return Change(product, began, time.monotonic(), version)  # the model version is unchanged


def kill_pubsub(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.client_kill_filter(_type="pubsub")
    finally:
        client.close()


def take_snapshot(server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    try:
        client.save()  # this snapshot holds the current versions' entries
    finally:
        client.close()


def writer(base: str, redis_server: RedisServer, rounds: int) -> list[Change]:
    changes: list[Change] = []
    for i in range(rounds):
        product = PRODUCTS[i % len(PRODUCTS)]
        if i % 4 == 0:
            take_snapshot(redis_server)
        changes.append(activate(base, product, 1 + i % 2))  # v1, v2, v1, ...
        changes.append(ingest(base, product, 1 + i % 28, 1 + i % 2))
        if i % 5 == 2:
            kill_pubsub(redis_server.url)
        if i % 4 == 1:
            redis_server.restart()  # back with the snapshot's old entries and tag counters
        time.sleep(0.15)
    return changes


def test_no_forecast_is_served_from_a_superseded_model(
    server: UvicornServer, own_redis: RedisServer
) -> None:
    def path(i: int) -> str:
        return f"/products/{PRODUCTS[i % len(PRODUCTS)]}/forecast?horizon={7 + i % 3}"

    with LoadLoop(server.url, path, threads=4, max_requests=20_000, max_seconds=120) as load:
        changes = writer(server.url, own_redis, rounds=24)
    stale = violations(load.outcomes, changes, initial=2)
    failed = [o for o in load.outcomes if o.status != 200]
    REDIS_LINES.append(
        f"stale forecasts: {len(load.outcomes)} reads on 2 workers during {len(changes)} changes "
        f"(6 Redis restarts from an old snapshot, 5 pub/sub kills): {len(stale)} stale, "
        f"{len(failed)} non-200"
    )
    assert stale == []
    assert failed == []
    assert len(load.outcomes) > 100
