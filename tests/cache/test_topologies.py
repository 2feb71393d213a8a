"""TieredCache on Redis Cluster, Sentinel and TLS: real servers the fixtures start.

Every test here drives the cache the way the service does (two caches for two
workers, tags, clear, health) and looks at Redis behind its back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from salescast.cache import (
    BackendUnavailableError,
    BreakerState,
    CacheSource,
    CircuitBreaker,
    TieredCache,
)
from salescast.cache.backends.redis_cluster import RedisClusterBackend
from salescast.cache.backends.redis_sentinel import RedisSentinelBackend
from salescast.cache.shared_tier import SharedTier
from tests.cache.polling import eventually
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_sentinel import RedisSentinelSet
from tests.support.redis_tls import RedisTLSServer


@pytest.fixture
def caches(prefix: str) -> Iterator[list[TieredCache]]:
    made: list[TieredCache] = []
    yield made
    for cache in made:
        cache.close()


def make(caches: list[TieredCache], l2: SharedTier, prefix: str, **options: Any) -> TieredCache:
    cache = TieredCache(l2=l2, prefix=prefix, **options)
    caches.append(cache)
    assert cache.wait_subscribed(10.0)
    return cache


def product_tags(index: int) -> list[str]:
    return [f"product:p{index}"]


# -- Redis Cluster -------------------------------------------------------------


def test_on_a_cluster_every_product_is_served_from_l2_by_another_worker(
    redis_cluster: RedisCluster, caches: list[TieredCache], prefix: str
) -> None:
    writer = make(caches, RedisClusterBackend(redis_cluster.startup_nodes), prefix)
    reader = make(caches, RedisClusterBackend(redis_cluster.startup_nodes), prefix)
    products = range(64)  # their hash tags spread over every master's slots
    for index in products:
        found = writer.get_or_compute(
            "data", index, lambda i=index: i, ttl=60, tags=product_tags(index)
        )
        assert found.source is CacheSource.MISS
    sources = [
        reader.get_or_compute("data", index, lambda: -1, ttl=60, tags=product_tags(index)).source
        for index in products
    ]
    assert set(sources) == {CacheSource.HIT_L2}
    for cache in (writer, reader):
        l2 = cache.stats().namespaces["data"].l2
        assert l2.errors == 0  # no MOVED ever reached the cache
        assert cache.breaker.state is BreakerState.CLOSED
    slots = {
        redis.cluster.key_slot(key.encode())
        for key in (
            writer.entry_key("data", 5, tags=product_tags(5)),
            writer.keys.tag_counter_key("product:p5"),
            writer.keys.lease_key(writer.entry_key("data", 5, tags=product_tags(5))),
        )
    }
    assert len(slots) == 1  # one product, one slot


def test_on_a_cluster_invalidation_reaches_the_other_worker_and_clear_every_master(
    redis_cluster: RedisCluster, caches: list[TieredCache], prefix: str
) -> None:
    a = make(caches, RedisClusterBackend(redis_cluster.startup_nodes), prefix)
    b = make(caches, RedisClusterBackend(redis_cluster.startup_nodes), prefix)
    for index in range(32):
        a.set("data", index, index, ttl=60, tags=product_tags(index))
        assert b.get("data", index, tags=product_tags(index)).source is CacheSource.HIT_L2
    a.invalidate_tag("product:p3")
    assert eventually(lambda: b.tag_generation("product:p3") == 1)
    assert b.get("data", 3, tags=product_tags(3)).source is CacheSource.MISS
    assert b.get("data", 4, tags=product_tags(4)).source is CacheSource.HIT_L1

    foreign = redis.cluster.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in redis_cluster.startup_nodes]
    )
    try:
        foreign.set(f"other-{prefix}:keep", b"x")
        removed = a.clear()
        assert removed >= 31  # the 31 live entries in Redis (and a's L1 copies)
        assert list(foreign.scan_iter(match=f"{prefix}:data:*")) == []
        assert foreign.get(f"other-{prefix}:keep") == b"x"  # only our prefix goes
        assert b.get("data", 4, tags=product_tags(4)).source is CacheSource.MISS
    finally:
        foreign.delete(f"other-{prefix}:keep")
        foreign.close()


def test_the_status_of_a_cluster_lists_its_nodes(
    redis_cluster: RedisCluster, caches: list[TieredCache], prefix: str
) -> None:
    cache = make(caches, RedisClusterBackend(redis_cluster.startup_nodes), prefix)
    health = cache.health()
    assert health.redis_topology == "cluster"
    assert health.redis_reachable
    assert health.redis_writable
    assert health.redis_nodes is not None
    assert sorted(node.role for node in health.redis_nodes) == ["master"] * 3 + ["slave"] * 3
    # A cluster just created may not have every bus link up yet: the report says so.
    assert eventually(
        lambda: all(node.answers for node in cache.health().redis_nodes or ()), timeout=10.0
    )
    dead = redis_cluster.kill_master()
    redis_cluster.wait_for_failover(dead)
    after = cache.health()
    assert after.redis_writable  # the promoted replica serves the dead master's slots
    assert after.redis_nodes is not None
    gone = [node for node in after.redis_nodes if node.address.endswith(f":{dead}")]
    assert [(node.role, node.answers) for node in gone] == [("failed", False)]
    assert sum(node.role == "master" and node.answers for node in after.redis_nodes) == 3


def test_a_cluster_failover_costs_no_lookup_and_l2_is_back_within_ten_seconds(
    redis_cluster: RedisCluster, caches: list[TieredCache], prefix: str
) -> None:
    # No L1: every lookup goes to Redis, so the failover is felt at once.
    l2 = RedisClusterBackend(redis_cluster.startup_nodes)
    cache = TieredCache(l2=l2, prefix=prefix, use_l1=False)
    caches.append(cache)
    products = range(24)
    for index in products:
        cache.set("data", index, index, ttl=120, tags=product_tags(index))

    def round_of_lookups() -> set[CacheSource]:
        sources = set()
        for index in products:
            found = cache.get_or_compute(
                "data", index, lambda i=index: i, ttl=120, tags=product_tags(index)
            )
            assert found.value == index  # never wrong, never an exception
            sources.add(found.source)
        return sources

    assert round_of_lookups() == {CacheSource.HIT_L2}
    dead = redis_cluster.kill_master()
    round_of_lookups()  # during the failover: answered (computed when L2 is away)
    redis_cluster.wait_for_failover(dead)
    promoted = time.monotonic()
    while round_of_lookups() != {CacheSource.HIT_L2}:
        assert time.monotonic() - promoted < 10.0, cache.breaker.snapshot()
        time.sleep(0.1)
    assert cache.health().redis_writable


class _Counted:
    """Counts the calls a cluster client routes (``execute_command``), passing them on."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        inner = client.execute_command

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return inner(*args, **kwargs)

        client.execute_command = counted


def _gets_on(redis_cluster: RedisCluster, port: int) -> int:
    with redis_cluster.client(port) as client:
        stats = client.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


def _reset_stats(redis_cluster: RedisCluster, *ports: int) -> None:
    for port in ports:
        with redis_cluster.client(port) as client:
            client.config_resetstat()


@pytest.mark.parametrize("face", ["sync", "asyncio"])
def test_a_cluster_hit_goes_straight_to_its_master_and_follows_a_moved_slot(
    redis_cluster: RedisCluster, caches: list[TieredCache], prefix: str, face: str
) -> None:
    import asyncio

    writer = make(caches, RedisClusterBackend(redis_cluster.startup_nodes), prefix)
    l2 = RedisClusterBackend(redis_cluster.startup_nodes)
    reader = TieredCache(l2=l2, prefix=prefix, use_l1=False)
    caches.append(reader)
    writer.set("data", "nine", 9, ttl=120)
    slot = redis.cluster.key_slot(writer.entry_key("data", "nine").encode())
    owner = redis_cluster.master_of_slot(slot).port
    other = next(m.port for m in redis_cluster.masters() if m.port != owner)
    loop = asyncio.new_event_loop()

    def lookups(count: int) -> set[CacheSource]:
        if face == "sync":
            return {reader.get("data", "nine").source for _ in range(count)}

        async def run() -> set[CacheSource]:
            return {(await reader.aget("data", "nine")).source for _ in range(count)}

        return loop.run_until_complete(run())

    def routed() -> _Counted:
        if face == "sync":
            return _Counted(l2._sync_client)

        async def client() -> Any:
            return l2._aclient()

        return _Counted(loop.run_until_complete(client()))

    try:
        assert lookups(1) == {CacheSource.HIT_L2}  # the client's first call reads the slot map
        counted = routed()
        _reset_stats(redis_cluster, owner, other)
        assert lookups(20) == {CacheSource.HIT_L2}
        assert counted.calls == 0  # past the cluster client's routing...
        assert _gets_on(redis_cluster, owner) == 20  # ...to the slot's master, one GET a hit

        redis_cluster.move_slot(slot, other)
        try:
            # The kept connection's node answers MOVED: the cluster client follows it.
            assert lookups(1) == {CacheSource.HIT_L2}
            assert counted.calls >= 1
            _reset_stats(redis_cluster, owner, other)
            before = counted.calls
            assert lookups(10) == {CacheSource.HIT_L2}
            assert counted.calls == before  # straight again, to the new owner
            assert (_gets_on(redis_cluster, other), _gets_on(redis_cluster, owner)) == (10, 0)
            assert reader.stats().namespaces["data"].l2.errors == 0
            assert reader.breaker.state is BreakerState.CLOSED
        finally:
            redis_cluster.move_slot(slot, owner)
    finally:
        if face == "asyncio":
            loop.run_until_complete(reader.aclose())
        loop.close()


# -- Redis Sentinel ------------------------------------------------------------


def test_sentinel_finds_the_master_and_another_worker_reads_from_it(
    redis_sentinels: RedisSentinelSet, caches: list[TieredCache], prefix: str
) -> None:
    sentinels, name = redis_sentinels.sentinels, redis_sentinels.master_name
    writer = make(caches, RedisSentinelBackend(sentinels, name), prefix)
    reader = make(caches, RedisSentinelBackend(sentinels, name), prefix)
    writer.set("data", "k", "v", ttl=60, tags=["product:p1"])
    assert reader.get("data", "k", tags=["product:p1"]).source is CacheSource.HIT_L2
    host, port = redis_sentinels.current_master()
    health = reader.health()
    assert health.redis_topology == "sentinel"
    assert health.redis_writable
    assert f"{host}:{port}" in (health.redis_url or "")


def test_after_a_sentinel_failover_writes_reach_the_new_master_and_status_names_it(
    redis_sentinels: RedisSentinelSet, caches: list[TieredCache], prefix: str
) -> None:
    sentinels, name = redis_sentinels.sentinels, redis_sentinels.master_name
    cache = make(caches, RedisSentinelBackend(sentinels, name), prefix, use_l1=False)
    other = make(caches, RedisSentinelBackend(sentinels, name), prefix, use_l1=False)
    cache.set("data", "before", 1, ttl=120)
    old = redis_sentinels.kill_master()
    assert cache.get_or_compute("data", "during", lambda: 2, ttl=120).value == 2  # fail-open
    new = redis_sentinels.wait_for_failover(old)
    promoted = time.monotonic()

    def l2_works() -> bool:
        cache.set("data", "after", 3, ttl=120)
        return other.get("data", "after").source is CacheSource.HIT_L2

    while not l2_works():
        assert time.monotonic() - promoted < 10.0, cache.breaker.snapshot()
        time.sleep(0.1)
    health = cache.health()
    assert health.redis_writable
    assert f"{new[0]}:{new[1]}" in (health.redis_url or "")

    # The old master comes back and is demoted: writes still go to the new one.
    redis_sentinels.restart_old_master()
    cache.set("data", "later", 4, ttl=120)
    assert other.get("data", "later").source is CacheSource.HIT_L2
    assert cache.health().redis_writable
    assert (
        cache.stats().namespaces["data"].l2.errors == 0
        or cache.breaker.state is BreakerState.CLOSED
    )


def test_a_single_server_that_answers_as_a_replica_is_not_reported_healthy(
    redis_sentinels: RedisSentinelSet, caches: list[TieredCache], prefix: str
) -> None:
    # The URL names one server, which is (now) a replica: every write fails.
    from salescast.cache import RedisBackend

    master = redis_sentinels.current_master()
    replica = next(port for port in redis_sentinels.data_nodes if port != master[1])
    clock = FakeClock()
    breaker = CircuitBreaker(reset_after=2.0, clock=clock)  # the default threshold (3)
    cache = make(caches, RedisBackend(f"redis://127.0.0.1:{replica}/0"), prefix, breaker=breaker)
    health = cache.health()
    assert health.redis_reachable is True
    assert health.redis_writable is False
    assert health.breaker_state == "open"  # at once, not after three reports
    assert "replica" in (health.breaker_last_error or "")
    # The background probe checks writability, not only that PING answers.
    clock.now += 2.0
    assert cache.get_or_compute("data", "k", lambda: "computed", ttl=60).value == "computed"
    assert eventually(lambda: cache.breaker.snapshot().probes == 1, timeout=5.0)
    assert eventually(lambda: cache.breaker.state is BreakerState.OPEN, timeout=5.0)
    assert "replica" in (cache.breaker.snapshot().last_error or "")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_frozen_cluster_at_start_up_costs_one_timeout_not_one_per_caller(
    caches: list[TieredCache], prefix: str
) -> None:
    import socket
    import threading

    # Sockets that listen but never accept: nodes that are there and silent.
    silent = []
    for _ in range(3):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        silent.append(sock)
    try:
        nodes = [("127.0.0.1", sock.getsockname()[1]) for sock in silent]
        cache = TieredCache(l2=RedisClusterBackend(nodes), prefix=prefix, subscribe=False)
        caches.append(cache)
        durations: list[float] = []
        barrier = threading.Barrier(8)

        def call(index: int) -> None:
            barrier.wait()
            started = time.monotonic()
            assert cache.get_or_compute("data", index, lambda: index, ttl=60).value == index
            durations.append(time.monotonic() - started)

        threads = [threading.Thread(target=call, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(durations) == 8
        # One attempt pays the three silent nodes' timeouts (about 0.75 s); the
        # callers queued behind it share its answer instead of each trying again
        # in turn (which took 0.75, 1.5, ... 6 s).
        assert max(durations) < 1.5, sorted(durations)
        assert cache.breaker.state is not BreakerState.CLOSED
    finally:
        for sock in silent:
            sock.close()


# -- TLS -------------------------------------------------------------------------


def test_tls_does_a_real_handshake_with_the_client_certificate(
    redis_tls: RedisTLSServer, caches: list[TieredCache], prefix: str
) -> None:
    def backend() -> SharedTier:
        from salescast.cache import RedisBackend

        return RedisBackend(
            redis_tls.url,
            ssl_ca_certs=str(redis_tls.ca_certs),
            ssl_certfile=str(redis_tls.certfile),
            ssl_keyfile=str(redis_tls.keyfile),
        )

    writer, reader = make(caches, backend(), prefix), make(caches, backend(), prefix)
    writer.set("data", "k", {"tls": True}, ttl=60)
    assert reader.get("data", "k") == ({"tls": True}, CacheSource.HIT_L2)
    assert reader.health().redis_version


def test_a_wrong_ca_opens_the_breaker_with_the_reason_and_never_hangs(
    redis_tls: RedisTLSServer, caches: list[TieredCache], prefix: str
) -> None:
    from salescast.cache import RedisBackend

    l2 = RedisBackend(
        redis_tls.url,
        ssl_ca_certs=str(redis_tls.wrong_ca_certs),
        ssl_certfile=str(redis_tls.certfile),
        ssl_keyfile=str(redis_tls.keyfile),
    )
    cache = TieredCache(l2=l2, prefix=prefix, subscribe=False)
    caches.append(cache)
    started = time.monotonic()
    for index in range(5):
        assert cache.get_or_compute("data", index, lambda i=index: i, ttl=60).value == index
    assert time.monotonic() - started < 5.0  # generous: a hang would be seconds per call
    assert cache.breaker.state is not BreakerState.CLOSED
    assert "CERTIFICATE_VERIFY_FAILED" in (cache.breaker.snapshot().last_error or "")


def test_a_cluster_that_is_down_at_start_costs_misses_not_the_start(
    caches: list[TieredCache], prefix: str
) -> None:
    from tests.support.redis_server import free_port

    nodes = [("127.0.0.1", free_port()) for _ in range(2)]  # nobody listens there
    cache = TieredCache(l2=RedisClusterBackend(nodes), prefix=prefix)
    caches.append(cache)
    assert cache.get_or_compute("data", 1, lambda: "computed", ttl=60).value == "computed"
    assert cache.health().redis_reachable is False
    assert "cannot be connected" in (cache.breaker.snapshot().last_error or "")


def test_a_cluster_ping_asks_every_master(
    redis_cluster: RedisCluster, caches: list[TieredCache], prefix: str
) -> None:
    backend = RedisClusterBackend(redis_cluster.startup_nodes)
    caches.append(TieredCache(l2=backend, prefix=prefix, subscribe=False))
    assert backend.ping()
    masters = redis_cluster.masters()
    # Freeze one master the startup node is not: a PING of one node would still answer.
    frozen = next(m for m in masters if (m.host, m.port) != redis_cluster.startup_nodes[0])
    redis_cluster.nodes[frozen.port].freeze()
    try:
        with pytest.raises(BackendUnavailableError):
            backend.ping()
    finally:
        redis_cluster.nodes[frozen.port].thaw()
    assert backend.ping()


def test_a_lease_held_when_its_master_died_is_released_once_the_new_master_answers(
    redis_sentinels: RedisSentinelSet, caches: list[TieredCache], prefix: str
) -> None:
    sentinels, name = redis_sentinels.sentinels, redis_sentinels.master_name
    # A long lease, so that only its release (not its expiry) can make it go in the test.
    owner = make(
        caches, RedisSentinelBackend(sentinels, name), prefix, use_l1=False, lease_ttl=60.0
    )
    lease_key = owner.keys.lease_key(owner.entry_key("data", "k"))
    killed: list[Any] = []

    def compute_while_the_master_dies() -> str:
        # The lease was taken on the master and replicated; then the master dies.
        assert wait_replicated(redis_sentinels, lease_key)
        killed.append(redis_sentinels.kill_master())
        return "computed"

    assert owner.get_or_compute("data", "k", compute_while_the_master_dies, ttl=60).value == (
        "computed"
    )
    redis_sentinels.wait_for_failover(killed[0])
    new_master = redis_sentinels.data_client(redis_sentinels.current_master())
    try:
        assert new_master.exists(lease_key) == 1  # the promoted replica holds it
        # The owner's next miss that reaches Redis pays what it owes.
        assert eventually(
            lambda: (
                owner.get_or_compute("data", f"other-{time.monotonic()}", lambda: 0, ttl=60)
                is not None
                and new_master.exists(lease_key) == 0
            ),
            timeout=10.0,
        )
    finally:
        new_master.close()


def wait_replicated(sentinels: RedisSentinelSet, key: str) -> bool:
    master = sentinels.current_master()
    replicas = [port for port in sentinels.data_nodes if port != master[1]]
    clients = [sentinels.data_client(port) for port in replicas]
    try:
        return eventually(lambda: all(client.exists(key) for client in clients), timeout=5.0)
    finally:
        for client in clients:
            client.close()
