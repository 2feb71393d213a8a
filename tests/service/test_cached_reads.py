"""The cache inside the service, through the real app: tiers, invalidation, admin, stats.

Every test runs on each Redis topology: one server, Sentinel (master + replica
+ 3 sentinels) and a 6-node Cluster, all real servers the fixtures start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.cluster
from fastapi.testclient import TestClient

from salescast.cache import product_tag
from salescast.config import Settings, parse_addresses
from tests.cache.polling import eventually
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
P1, P2 = "CA_1-FOODS_3", "CA_3-FOODS_3"
MakeClient = Callable[[Settings], TestClient]
ONE_SERVER = {"redis_url": None, "redis_sentinels": None, "redis_sentinel_master": None}
NO_REDIS = {**ONE_SERVER, "redis_cluster_nodes": None}


@pytest.fixture(params=["single", "sentinel", "cluster"])
def redis_settings(request: pytest.FixtureRequest, redis_settings: Settings) -> Settings:
    """The service's settings on one topology (overrides the conftest's one-server ones)."""
    if request.param == "single":
        return redis_settings
    if request.param == "sentinel":
        sentinels = request.getfixturevalue("redis_sentinels")
        return redis_settings.model_copy(
            update={
                **NO_REDIS,
                "redis_sentinels": sentinels.sentinels_setting,
                "redis_sentinel_master": sentinels.master_name,
            }
        )
    cluster = request.getfixturevalue("redis_cluster")
    return redis_settings.model_copy(
        update={**NO_REDIS, "redis_cluster_nodes": cluster.nodes_setting}
    )


@pytest.fixture
def raw_redis(request: pytest.FixtureRequest, redis_settings: Settings) -> Iterator[Any]:
    """A plain client of the topology the test runs on, for looking behind the cache."""
    client: Any
    if redis_settings.redis_cluster_nodes:
        nodes = parse_addresses(redis_settings.redis_cluster_nodes)
        client = redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in nodes]
        )
    elif redis_settings.redis_sentinels:
        sentinels = request.getfixturevalue("redis_sentinels")
        client = sentinels.sentinel_client().master_for(sentinels.master_name)
    else:
        assert redis_settings.redis_url is not None
        client = redis.Redis.from_url(redis_settings.redis_url.get_secret_value())
    yield client
    client.close()


def forecast(client: TestClient, product: str = P1, **params: object) -> tuple[int, str]:
    response = client.get(f"/products/{product}/forecast", params={"horizon": 7, **params})
    assert response.status_code == 200, response.text
    return response.json()["model_version"], response.headers["x-cache"]


def prediction_stats(client: TestClient) -> dict[str, int]:
    ns = client.get("/cache/stats").json()["namespaces"]["prediction"]
    return {
        "l1_hits": ns["l1"]["hits"],
        "l2_hits": ns["l2"]["hits"],
        "misses": ns["misses"],
        "computations": ns["computations"],
    }


def test_first_forecast_is_a_miss_and_the_next_ones_l1_hits_computed_once(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    client = make_client(redis_settings)
    assert [forecast(client)[1] for _ in range(4)] == ["MISS", "HIT-L1", "HIT-L1", "HIT-L1"]
    assert prediction_stats(client) == {"l1_hits": 3, "l2_hits": 0, "misses": 1, "computations": 1}


def test_another_worker_is_served_from_redis_then_from_its_own_l1(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    first, second = make_client(redis_settings), make_client(redis_settings)
    assert forecast(first) == (1, "MISS")
    assert forecast(second) == (1, "HIT-L2")
    assert forecast(second) == (1, "HIT-L1")
    assert prediction_stats(second)["computations"] == 0


def test_the_in_process_cache_alone_serves_hits_without_redis(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    client = make_client(redis_settings.model_copy(update=NO_REDIS))
    assert [forecast(client)[1] for _ in range(2)] == ["MISS", "HIT-L1"]
    assert client.get("/cache/status").json()["backend"] == "memory"


def test_training_in_one_worker_changes_the_next_forecast_of_every_worker(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    a, b = make_client(redis_settings), make_client(redis_settings)
    forecast(a)
    forecast(b)
    assert a.post(f"/products/{P1}/train", headers=ADMIN).json()["version"] == 2
    assert forecast(b) == (2, "MISS")
    assert forecast(a)[0] == 2


def test_rollback_in_one_worker_is_served_by_the_other_at_once(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    a, b = make_client(redis_settings), make_client(redis_settings)
    a.post(f"/products/{P1}/train", headers=ADMIN)
    assert forecast(b)[0] == 2
    assert a.post(f"/products/{P1}/models/1/activate", headers=ADMIN).status_code == 200
    assert forecast(b)[0] == 1


def test_a_change_to_one_product_leaves_other_products_cached(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    a, b = make_client(redis_settings), make_client(redis_settings)
    forecast(b, P2)
    a.post(f"/products/{P1}/models/1/activate", headers=ADMIN)
    a.post(
        "/sales",
        json=[{"date": "2016-04-25", "product_id": P1, "quantity": 5}],
        headers=ADMIN,
    )
    assert forecast(b, P2) == (1, "HIT-L1")


def test_new_sales_are_in_the_next_history_read_of_every_worker(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    a, b = make_client(redis_settings), make_client(redis_settings)
    params = {"start": "2016-04-20"}
    before = b.get(f"/products/{P1}/sales", params=params).json()
    assert b.get(f"/products/{P1}/sales", params=params).json() == before  # cached
    data_stats = b.get("/cache/stats").json()["namespaces"]["data"]
    assert data_stats["hits"] == 1
    rows = [{"date": "2016-04-25", "product_id": P1, "quantity": 5}]
    assert a.post("/sales", json=rows, headers=ADMIN).status_code == 201
    after = b.get(f"/products/{P1}/sales", params=params).json()
    assert after["data_version"] == before["data_version"] + 1
    assert after["points"][-1] == {"date": "2016-04-25", "quantity": 5.0}


def test_clear_removes_only_this_services_keys_and_empties_every_l1(
    make_client: MakeClient, redis_settings: Settings, raw_redis: Any
) -> None:
    a, b = make_client(redis_settings), make_client(redis_settings)
    neighbour = make_client(redis_settings.model_copy(update={"cache_prefix": "neighbour"}))
    raw_redis.set("foreign:key", b"keep me")
    forecast(a)
    forecast(b)
    forecast(neighbour)
    ours = redis_settings.cache_prefix
    assert list(raw_redis.scan_iter(f"{ours}:prediction:*"))
    cleared = a.request("DELETE", "/cache/clear", headers=ADMIN)
    assert cleared.status_code == 200
    assert cleared.json()["removed"] >= 2
    assert list(raw_redis.scan_iter(f"{ours}:prediction:*")) == []
    assert list(raw_redis.scan_iter(f"{ours}:model:*")) == []
    assert raw_redis.get("foreign:key") == b"keep me"
    assert list(raw_redis.scan_iter("neighbour:prediction:*"))
    # b hears of the clear over pub/sub, a moment later: wait for its L1 to empty.
    b_cache = b.app.state.service.cache  # type: ignore[attr-defined]
    assert eventually(lambda: b_cache.l1.usage().entries == 0)
    assert forecast(b)[1] == "MISS"
    assert forecast(neighbour)[1] == "HIT-L1"


def test_clear_of_one_namespace_keeps_the_others(
    make_client: MakeClient, redis_settings: Settings, raw_redis: Any
) -> None:
    client = make_client(redis_settings)
    forecast(client)
    response = client.request(
        "DELETE", "/cache/clear", params={"namespace": "prediction"}, headers=ADMIN
    )
    assert response.status_code == 200
    ours = redis_settings.cache_prefix
    assert list(raw_redis.scan_iter(f"{ours}:prediction:*")) == []
    assert list(raw_redis.scan_iter(f"{ours}:model:*"))
    bad = client.request("DELETE", "/cache/clear", params={"namespace": "keys"}, headers=ADMIN)
    assert bad.status_code == 422


def test_invalidating_one_product_drops_its_entries_in_every_worker(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    a, b = make_client(redis_settings), make_client(redis_settings)
    forecast(a)
    forecast(b, P1)
    forecast(b, P2)
    response = a.request("DELETE", f"/cache/products/{P1}", headers=ADMIN)
    assert response.status_code == 200
    # b hears of it over pub/sub, a moment later: wait for the message, not a time.
    caches = [client.app.state.service.cache for client in (a, b)]  # type: ignore[attr-defined]
    tag = product_tag(P1)
    assert eventually(lambda: caches[1].tag_generation(tag) == caches[0].tag_generation(tag))
    assert forecast(b, P1)[1] == "MISS"
    assert forecast(b, P2)[1] == "HIT-L1"
    assert a.request("DELETE", "/cache/products/nope", headers=ADMIN).status_code == 404


def test_cache_admin_endpoints_need_the_admin_token(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    client = make_client(redis_settings)
    for method, path in (
        ("POST", "/cache/warmup"),
        ("DELETE", "/cache/clear"),
        ("DELETE", f"/cache/products/{P1}"),
    ):
        assert client.request(method, path).status_code == 401
        assert (
            client.request(method, path, headers={"Authorization": "Bearer x"}).status_code == 403
        )


def test_stats_and_metrics_count_the_traffic(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    client = make_client(redis_settings)
    for _ in range(3):
        forecast(client)
    stats = client.get("/cache/stats").json()
    prediction = stats["namespaces"]["prediction"]
    assert (prediction["hits"], prediction["misses"]) == (2, 1)
    assert abs(prediction["hit_rate"] - 2 / 3) < 1e-9
    assert prediction["l1"]["latency"]["count"] >= 3
    assert stats["worker"]["pid"] > 0
    metrics = client.get("/metrics").text
    assert (
        'salescast_cache_events_total{event="hits",namespace="prediction",tier="l1"} 2.0' in metrics
    )
    assert 'route="/products/{product_id}/forecast",status="200"} 3.0' in metrics


def test_status_shows_redis_and_its_version_but_never_its_password(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    from tests.support.redis_server import RedisServer

    with RedisServer(password="s3cret-pass") as locked:
        update = {**NO_REDIS, "redis_url": _secret(locked.url)}
        settings = redis_settings.model_copy(update=update)
        client = make_client(settings)
        forecast(client)
        status = client.get("/cache/status")
        assert "s3cret-pass" not in status.text
        body = status.json()
        assert (body["backend"], body["redis_reachable"]) == ("redis", True)
        assert body["redis_version"].startswith("7.")
        assert body["breaker_state"] == "closed"
        assert body["l1_entries"] >= 1
        assert forecast(make_client(settings))[1] == "HIT-L2"


def _secret(value: str) -> object:
    from pydantic import SecretStr

    return SecretStr(value)
