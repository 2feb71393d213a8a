"""TLS on Sentinel and Cluster: real handshakes with the client certificate, and a wrong CA.

The servers listen on TLS only (``port 0``), so anything that answers at all went
through a handshake; the single-server TLS tests are in test_topologies.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from salescast.cache import BreakerState, CacheSource, TieredCache
from salescast.cache.backends.redis_cluster import RedisClusterBackend
from salescast.cache.backends.redis_sentinel import RedisSentinelBackend
from salescast.cache.shared_tier import SharedTier
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_sentinel import RedisSentinelSet


@pytest.fixture
def caches() -> Iterator[list[TieredCache]]:
    made: list[TieredCache] = []
    yield made
    for cache in made:
        cache.close()


def make(caches: list[TieredCache], l2: SharedTier, prefix: str, **options: Any) -> TieredCache:
    cache = TieredCache(l2=l2, prefix=prefix, **options)
    caches.append(cache)
    assert cache.wait_subscribed(10.0)
    return cache


def assert_two_workers_share_l2(
    backend: Callable[[], SharedTier], caches: list[TieredCache], prefix: str
) -> TieredCache:
    writer, reader = make(caches, backend(), prefix), make(caches, backend(), prefix)
    for index in range(16):  # on a cluster, spread over every master's slots
        writer.set("data", index, {"tls": index}, ttl=60, tags=[f"product:p{index}"])
    for index in range(16):
        found = reader.get("data", index, tags=[f"product:p{index}"])
        assert found == ({"tls": index}, CacheSource.HIT_L2)
    for cache in (writer, reader):
        assert cache.stats().namespaces["data"].l2.errors == 0
        assert cache.breaker.state is BreakerState.CLOSED
    return reader


def assert_wrong_ca_answers_computed_and_says_why(
    l2: SharedTier, caches: list[TieredCache], prefix: str
) -> None:
    cache = TieredCache(l2=l2, prefix=prefix, subscribe=False)
    caches.append(cache)
    started = time.monotonic()
    for index in range(5):
        assert cache.get_or_compute("data", index, lambda i=index: i, ttl=60).value == index
    assert time.monotonic() - started < 5.0  # generous: a hang would be seconds per call
    assert cache.breaker.state is not BreakerState.CLOSED
    assert "CERTIFICATE_VERIFY_FAILED" in (cache.breaker.snapshot().last_error or "")


# -- Redis Cluster over TLS ------------------------------------------------------


def cluster_backend(cluster: RedisCluster, *, ca_certs: str | None = None) -> RedisClusterBackend:
    return RedisClusterBackend(
        cluster.startup_nodes,
        url="rediss://",
        ssl_ca_certs=ca_certs or cluster.ca_certs,
        ssl_certfile=cluster.certfile,
        ssl_keyfile=cluster.keyfile,
    )


def test_on_a_tls_cluster_another_worker_reads_from_l2_and_status_is_writable(
    redis_cluster_tls: RedisCluster, caches: list[TieredCache], prefix: str
) -> None:
    reader = assert_two_workers_share_l2(lambda: cluster_backend(redis_cluster_tls), caches, prefix)
    health = reader.health()
    assert health.redis_topology == "cluster"
    assert health.redis_reachable
    assert health.redis_writable
    assert health.redis_version
    assert health.redis_nodes is not None
    # Every node reported is one of the TLS ports (the nodes have no other), answering;
    # replicas show only once CLUSTER SLOTS lists them (Redis 7.0 leaves out a replica
    # whose replication offset is still 0), so only the masters are certain to be there.
    addresses = {node.address for node in health.redis_nodes}
    assert addresses <= {f"{host}:{port}" for host, port in redis_cluster_tls.startup_nodes}
    masters = {f"{node.host}:{node.port}" for node in redis_cluster_tls.masters()}
    assert masters <= addresses
    assert all(node.answers for node in health.redis_nodes)


def test_a_tls_cluster_with_a_wrong_ca_answers_computed_and_the_breaker_says_why(
    redis_cluster_tls: RedisCluster, caches: list[TieredCache], prefix: str
) -> None:
    l2 = cluster_backend(redis_cluster_tls, ca_certs=redis_cluster_tls.wrong_ca_certs)
    assert_wrong_ca_answers_computed_and_says_why(l2, caches, prefix)


# -- Redis Sentinel over TLS -----------------------------------------------------


def sentinel_backend(
    sentinels: RedisSentinelSet, *, ca_certs: str | None = None
) -> RedisSentinelBackend:
    return RedisSentinelBackend(
        sentinels.sentinels,
        sentinels.master_name,
        url="rediss://",
        ssl_ca_certs=ca_certs or sentinels.ca_certs,
        ssl_certfile=sentinels.certfile,
        ssl_keyfile=sentinels.keyfile,
    )


def test_sentinel_over_tls_finds_the_master_and_another_worker_reads_from_it(
    redis_sentinels_tls: RedisSentinelSet, caches: list[TieredCache], prefix: str
) -> None:
    reader = assert_two_workers_share_l2(
        lambda: sentinel_backend(redis_sentinels_tls), caches, prefix
    )
    host, port = redis_sentinels_tls.current_master()
    health = reader.health()
    assert health.redis_topology == "sentinel"
    assert health.redis_reachable
    assert health.redis_writable
    assert health.redis_version
    assert f"{host}:{port}" in (health.redis_url or "")


def test_sentinel_over_tls_with_a_wrong_ca_answers_computed_and_the_breaker_says_why(
    redis_sentinels_tls: RedisSentinelSet, caches: list[TieredCache], prefix: str
) -> None:
    l2 = sentinel_backend(redis_sentinels_tls, ca_certs=redis_sentinels_tls.wrong_ca_certs)
    assert_wrong_ca_answers_computed_and_says_why(l2, caches, prefix)
