"""A real `salescast serve --workers 2` sharing one real redis-server: coherence across workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.conftest import ADMIN_TOKEN
from tests.support.redis_server import RedisServer
from tests.support.uvicorn_server import UvicornServer

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
P1, P2 = "CA_1-FOODS_3", "CA_3-FOODS_3"
# a new connection per request, so the kernel hands requests to either worker
FRESH = {"Connection": "close"}


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def server(demo_database_url: str, own_redis: RedisServer) -> Iterator[UvicornServer]:
    env = {
        "SALESCAST_DATABASE_URL": demo_database_url,
        "SALESCAST_REDIS_URL": own_redis.url,
        "SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN,
        "SALESCAST_WARMUP_ON_STARTUP": "false",
        "SALESCAST_UNCERTAINTY_SAMPLES": "100",
    }
    with UvicornServer(env, workers=2) as running:
        seen = worker_pids(running.url, want=2)
        assert len(seen) == 2, f"only {seen} answered:\n{running.log_text()[-2000:]}"
        yield running


def worker_pids(url: str, *, want: int, tries: int = 300) -> set[int]:
    seen: set[int] = set()
    for _ in range(tries):
        response = httpx.get(f"{url}/cache/stats", headers=FRESH, timeout=10)
        if response.status_code == 200:
            seen.add(response.json()["worker"]["pid"])
        if len(seen) >= want:
            break
    return seen


def forecasts(url: str, product: str, n: int) -> list[tuple[int, int, str]]:
    """`n` forecasts on fresh connections: (status, model_version, X-Cache)."""
    out = []
    for _ in range(n):
        response = httpx.get(
            f"{url}/products/{product}/forecast?horizon=7", headers=FRESH, timeout=30
        )
        version = response.json().get("model_version", -1) if response.status_code == 200 else -1
        out.append((response.status_code, version, response.headers.get("x-cache", "")))
    return out


def test_two_workers_stay_coherent_through_train_rollback_ingest_and_clear(
    server: UvicornServer, own_redis: RedisServer
) -> None:
    url = server.url
    first = forecasts(url, P1, 20)
    assert {status for status, _, _ in first} == {200}
    assert [source for _, _, source in first].count("MISS") == 1  # one computation for both workers
    assert {source for _, _, source in first[1:]} <= {"HIT-L1", "HIT-L2"}

    trained = httpx.post(f"{url}/products/{P1}/train", headers={**ADMIN, **FRESH}, timeout=120)
    assert trained.status_code == 201
    assert {version for _, version, _ in forecasts(url, P1, 20)} == {2}

    rolled = httpx.post(f"{url}/products/{P1}/models/1/activate", headers={**ADMIN, **FRESH})
    assert rolled.status_code == 200
    assert {version for _, version, _ in forecasts(url, P1, 20)} == {1}

    before = httpx.get(f"{url}/products/{P2}/sales?start=2016-04-01", headers=FRESH).json()
    rows = [{"date": "2016-04-25", "product_id": P2, "quantity": 3}]
    assert httpx.post(f"{url}/sales", json=rows, headers={**ADMIN, **FRESH}).status_code == 201
    for _ in range(10):
        after = httpx.get(f"{url}/products/{P2}/sales?start=2016-04-01", headers=FRESH).json()
        assert after["data_version"] == before["data_version"] + 1
        assert after["points"][-1]["date"] == "2016-04-25"

    foreign = redis.Redis.from_url(own_redis.url)
    try:
        foreign.set("someone-else:key", b"1")
        cleared = httpx.request("DELETE", f"{url}/cache/clear", headers={**ADMIN, **FRESH})
        assert cleared.status_code == 200
        assert foreign.get("someone-else:key") == b"1"
        assert list(foreign.scan_iter("salescast:prediction:*")) == []
    finally:
        foreign.close()
    assert [source for _, _, source in forecasts(url, P1, 10)].count("MISS") == 1


def test_metrics_sum_the_requests_of_both_workers(server: UvicornServer) -> None:
    forecasts(server.url, P1, 12)
    worker_pids(server.url, want=2)  # make sure both workers have synced at least once
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"{server.url}/metrics", headers=FRESH).text
        if 'route="/products/{product_id}/forecast",status="200"} 12.0' in text:
            break
        time.sleep(0.5)
    assert 'route="/products/{product_id}/forecast",status="200"} 12.0' in text
    assert "salescast_cache_events_total" in text


def test_redis_killed_and_restarted_under_load_fails_no_request(
    server: UvicornServer, own_redis: RedisServer
) -> None:
    url = server.url
    results: list[tuple[int, float]] = []
    for i in range(150):
        if i == 40:
            own_redis.kill()
        if i == 100:
            own_redis.start()
        product = P1 if i % 2 else P2
        started = time.perf_counter()
        response = httpx.get(
            f"{url}/products/{product}/forecast?horizon={7 + i % 3}", headers=FRESH, timeout=30
        )
        results.append((response.status_code, time.perf_counter() - started))
    assert [status for status, _ in results if status != 200] == []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statuses = [httpx.get(f"{url}/cache/status", headers=FRESH).json() for _ in range(6)]
        if all(s["redis_reachable"] for s in statuses):
            break
        time.sleep(0.3)
    assert all(s["redis_reachable"] for s in statuses)


def test_cli_cache_commands_talk_to_the_running_server(server: UvicornServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}
    env["SALESCAST_ADMIN_TOKEN"] = ADMIN_TOKEN

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "salescast", "cache", *args, "--url", server.url],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip

    status = cli("status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["backend"] == "redis"
    assert "namespaces" in json.loads(cli("stats").stdout)
    cleared = cli("clear", "--namespace", "prediction")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["namespace"] == "prediction"
    assert cli("warmup").returncode == 0
    unreachable = subprocess.run(
        [sys.executable, "-m", "salescast", "cache", "status", "--url", "http://127.0.0.1:9"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert unreachable.returncode == 1
    assert "cannot reach the server" in unreachable.stderr
