"""`salescast serve --workers 2` on a Redis Cluster and on Sentinel: coherence and a dead master.

The same checks as test_workers.py makes on one server, on the other
topologies the fixtures start (on SQLite only: the store is not what varies
here). Killing a master is the Redis fault these topologies are built for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis.cluster

from tests.conftest import ADMIN_TOKEN
from tests.service.test_workers import ADMIN, FRESH, P1, P2, forecasts, worker_pids
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_sentinel import RedisSentinelSet
from tests.support.uvicorn_server import UvicornServer


@pytest.fixture(params=["sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["cluster", "sentinel"])
def topology(request: pytest.FixtureRequest) -> RedisCluster | RedisSentinelSet:
    name = "redis_cluster" if request.param == "cluster" else "redis_sentinels"
    found: RedisCluster | RedisSentinelSet = request.getfixturevalue(name)
    return found


def topology_env(topology: RedisCluster | RedisSentinelSet) -> dict[str, str]:
    if isinstance(topology, RedisCluster):
        return {"SALESCAST_REDIS_CLUSTER_NODES": topology.nodes_setting}
    return {
        "SALESCAST_REDIS_SENTINELS": topology.sentinels_setting,
        "SALESCAST_REDIS_SENTINEL_MASTER": topology.master_name,
    }


def raw_client(topology: RedisCluster | RedisSentinelSet) -> Any:
    if isinstance(topology, RedisCluster):
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in topology.startup_nodes]
        return redis.cluster.RedisCluster(startup_nodes=nodes)
    return topology.sentinel_client().master_for(topology.master_name)


@pytest.fixture
def server(
    demo_database_url: str, topology: RedisCluster | RedisSentinelSet, tmp_path: Any
) -> Iterator[UvicornServer]:
    env = {
        "SALESCAST_DATABASE_URL": demo_database_url,
        "SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN,
        "SALESCAST_WARMUP_ON_STARTUP": "false",
        "SALESCAST_UNCERTAINTY_SAMPLES": "100",
        "SALESCAST_CACHE_PREFIX": f"w{tmp_path.name[-8:]}".replace("-", ""),
        **topology_env(topology),
    }
    with UvicornServer(env, workers=2) as running:
        seen = worker_pids(running.url, want=2)
        assert len(seen) == 2, f"only {seen} answered:\n{running.log_text()[-2000:]}"
        yield running


def test_two_workers_stay_coherent_on_the_topology(
    server: UvicornServer, topology: RedisCluster | RedisSentinelSet
) -> None:
    url = server.url
    first = forecasts(url, P1, 20)
    assert [source for _, _, source in first].count("MISS") == 1  # one computation for both
    assert {source for _, _, source in first[1:]} <= {"HIT-L1", "HIT-L2"}
    rolled = httpx.post(f"{url}/products/{P1}/models/1/activate", headers={**ADMIN, **FRESH})
    assert rolled.status_code == 200
    assert {version for _, version, _ in forecasts(url, P1, 20)} == {1}
    before = httpx.get(f"{url}/products/{P2}/sales?start=2016-04-01", headers=FRESH).json()
    rows = [{"date": "2016-04-25", "product_id": P2, "quantity": 3}]
    assert httpx.post(f"{url}/sales", json=rows, headers={**ADMIN, **FRESH}).status_code == 201
    for _ in range(10):
        after = httpx.get(f"{url}/products/{P2}/sales?start=2016-04-01", headers=FRESH).json()
        assert after["data_version"] == before["data_version"] + 1
    foreign = raw_client(topology)
    try:
        foreign.set("someone-else:key", b"1")
        cleared = httpx.request("DELETE", f"{url}/cache/clear", headers={**ADMIN, **FRESH})
        assert cleared.status_code == 200
        assert foreign.get("someone-else:key") == b"1"
        status = httpx.get(f"{url}/cache/status", headers=FRESH).json()
        assert status["redis_writable"] is True
    finally:
        foreign.delete("someone-else:key")
        foreign.close()
    assert [source for _, _, source in forecasts(url, P1, 10)].count("MISS") == 1


def test_a_master_killed_under_load_fails_no_request(
    server: UvicornServer, topology: RedisCluster | RedisSentinelSet
) -> None:
    url = server.url
    statuses: list[int] = []
    killed: Any = None
    for i in range(150):
        if i == 40:
            killed = topology.kill_master()
        product = P1 if i % 2 else P2
        response = httpx.get(
            f"{url}/products/{product}/forecast?horizon={7 + i % 3}", headers=FRESH, timeout=30
        )
        statuses.append(response.status_code)
    assert [status for status in statuses if status != 200] == []
    topology.wait_for_failover(killed)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reports = [httpx.get(f"{url}/cache/status", headers=FRESH).json() for _ in range(6)]
        if all(r["redis_reachable"] and r["redis_writable"] for r in reports):
            break
        time.sleep(0.3)
    assert all(r["redis_reachable"] and r["redis_writable"] for r in reports)
