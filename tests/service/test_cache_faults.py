"""The service with Redis gone, back, or never there; bounded compute; warm-up at start."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from salescast.config import Settings
from tests.cache.polling import eventually
from tests.conftest import make_settings
from tests.support.redis_server import RedisServer, free_port

P1, P2, P3 = "CA_1-FOODS_3", "CA_3-FOODS_3", "TX_2-HOUSEHOLD_1"
MakeClient = Callable[[Settings], TestClient]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server this test may kill and restart."""
    with RedisServer() as server:
        yield server


def get_forecast(client: TestClient, product: str, horizon: int = 7) -> tuple[int, str, float]:
    started = time.perf_counter()
    response = client.get(f"/products/{product}/forecast", params={"horizon": horizon})
    return response.status_code, response.headers.get("x-cache", ""), time.perf_counter() - started


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    return eventually(condition, timeout)


def test_redis_killed_and_restarted_mid_test_fails_no_request(
    make_client: MakeClient, demo_database_url: str, own_redis: RedisServer
) -> None:
    settings = make_settings(
        demo_database_url, redis_url=SecretStr(own_redis.url), cache_prefix="faults"
    )
    client = make_client(settings)
    assert get_forecast(client, P1)[:2] == (200, "MISS")

    own_redis.kill()
    during = [get_forecast(client, product) for product in (P1, P2, P1, P2, P3, P1)]
    assert [status for status, _, _ in during] == [200] * 6
    assert during[0][1] == "HIT-L1"  # L1 keeps serving what it has
    # a refused connection fails fast; generous bound, the point is "not seconds"
    assert max(seconds for _, _, seconds in during) < 5
    status = client.get("/cache/status").json()
    assert status["redis_reachable"] is False
    assert status["breaker_state"] in ("open", "half_open")

    own_redis.start()
    assert wait_until(lambda: client.get("/cache/status").json()["redis_reachable"] is True)
    # L2 is written again: a fresh worker gets its forecast from Redis
    assert get_forecast(client, P3, horizon=9)[:2] == (200, "MISS")
    assert get_forecast(make_client(settings), P3, horizon=9)[:2] == (200, "HIT-L2")


def test_service_starts_and_answers_when_redis_is_down_at_start(
    make_client: MakeClient, demo_database_url: str
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    client = make_client(make_settings(demo_database_url, redis_url=SecretStr(nowhere)))
    assert client.get("/healthz").status_code == 200
    statuses = [get_forecast(client, P1)[:2] for _ in range(3)]
    assert statuses == [(200, "MISS"), (200, "HIT-L1"), (200, "HIT-L1")]
    body = client.get("/cache/status").json()
    assert (body["backend"], body["redis_reachable"]) == ("redis", False)


def test_redis_that_comes_up_later_is_used_without_a_restart(
    make_client: MakeClient, demo_database_url: str
) -> None:
    server = RedisServer()
    settings = make_settings(
        demo_database_url, redis_url=SecretStr(server.url), cache_prefix="late"
    )
    client = make_client(settings)
    assert get_forecast(client, P1)[0] == 200
    with server:  # starts it now
        assert wait_until(lambda: client.get("/cache/status").json()["redis_reachable"] is True)
        assert get_forecast(client, P2)[:2] == (200, "MISS")
        assert get_forecast(make_client(settings), P2)[:2] == (200, "HIT-L2")


def test_a_cold_request_beyond_the_compute_limit_gets_429_with_retry_after(
    make_client: MakeClient, demo_database_url: str
) -> None:
    settings = make_settings(demo_database_url, compute_max_running=1, compute_max_waiting=0)
    client = make_client(settings)
    assert get_forecast(client, P1)[0] == 200
    service = client.app.state.service  # type: ignore[attr-defined]
    with service.gate.slot():  # the only slot is busy computing something else
        busy = client.get(f"/products/{P2}/forecast")
        assert busy.status_code == 429
        assert int(busy.headers["retry-after"]) >= 1
        assert "busy" in busy.json()["detail"]
        assert get_forecast(client, P1)[:2] == (200, "HIT-L1")  # hits never wait
    assert get_forecast(client, P2)[0] == 200
    assert service.gate.snapshot().rejected == 1


def test_warmup_at_start_loads_the_busiest_products_in_the_background(
    make_client: MakeClient, demo_database_url: str
) -> None:
    settings = make_settings(demo_database_url, warmup_on_startup=True, warmup_max_products=3)
    client = make_client(settings)
    assert client.get("/healthz").status_code == 200

    def finished() -> bool:
        return client.get("/readyz").json()["warmup"]["state"] == "done"

    assert wait_until(finished, timeout=60)
    warmup = client.get("/cache/status").json()["warmup"]
    assert (warmup["total"], warmup["done"], warmup["failed"]) == (3, 3, 0)
    busiest = client.app.state.service.list_warmup_products(3)  # type: ignore[attr-defined]
    for product in busiest:
        status, source, _ = get_forecast(client, product, horizon=settings.default_horizon_days)
        assert (status, source) == (200, "HIT-L1")


def test_warmup_can_be_started_by_an_admin(make_client: MakeClient, demo_database_url: str) -> None:
    client = make_client(make_settings(demo_database_url))
    headers = {"Authorization": "Bearer test-admin-token"}
    first = client.post("/cache/warmup", headers=headers)
    assert first.status_code == 202
    assert first.json()["started"] is True
    assert wait_until(lambda: client.get("/readyz").json()["warmup"]["state"] == "done", 60)
    assert client.get("/readyz").json()["warmup"]["total"] == 5
