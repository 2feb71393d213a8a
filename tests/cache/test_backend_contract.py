"""One contract suite, run against every backend: memory, one Redis, Sentinel, Cluster.

``TestBackendContract`` is the byte store every tier keeps; ``TestSharedTierContract``
is the L2 contract the control flow uses (counters, leases, deletes by
pattern, publish, the topology report), on both faces, for every shared tier.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from salescast.cache import CacheBackend, MemoryBackend, RedisBackend
from salescast.cache.backends.redis_cluster import RedisClusterBackend
from salescast.cache.backends.redis_sentinel import RedisSentinelBackend
from salescast.cache.shared_tier import SharedTier
from tests.support.redis_server import RedisServer

SHARED_TIERS = ["redis", "sentinel", "cluster"]


def make_shared_tier(kind: str, request: pytest.FixtureRequest) -> SharedTier:
    """A shared tier of ``kind`` on the session's servers of that topology."""
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return RedisBackend(server.url)
    if kind == "sentinel":
        sentinels = request.getfixturevalue("redis_sentinels")
        return RedisSentinelBackend(sentinels.sentinels, sentinels.master_name)
    cluster = request.getfixturevalue("redis_cluster")
    return RedisClusterBackend(cluster.startup_nodes)


@pytest.fixture(params=["memory", *SHARED_TIERS])
def backend(request: pytest.FixtureRequest) -> Iterator[CacheBackend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    shared = make_shared_tier(request.param, request)
    yield shared
    shared.close()


@pytest.fixture(params=SHARED_TIERS)
def shared(request: pytest.FixtureRequest) -> Iterator[SharedTier]:
    tier = make_shared_tier(request.param, request)
    yield tier
    tier.close()


@pytest.fixture
def key(prefix: str) -> str:
    return f"{prefix}:contract"


class TestBackendContract:
    def test_backend_satisfies_the_protocol(self, backend: CacheBackend) -> None:
        assert isinstance(backend, CacheBackend)

    def test_missing_key_reads_none(self, backend: CacheBackend, key: str) -> None:
        assert backend.get(key) is None

    def test_set_then_get_returns_the_same_bytes(self, backend: CacheBackend, key: str) -> None:
        backend.set(key, b"\x00value\xff", 60)
        entry = backend.get(key)
        assert entry is not None
        assert entry.value == b"\x00value\xff"

    def test_empty_bytes_are_a_hit_not_a_miss(self, backend: CacheBackend, key: str) -> None:
        backend.set(key, b"", 60)
        entry = backend.get(key)
        assert entry is not None
        assert entry.value == b""

    def test_remaining_ttl_is_reported_in_seconds(self, backend: CacheBackend, key: str) -> None:
        backend.set(key, b"v", 30)
        entry = backend.get(key)
        assert entry is not None
        assert entry.ttl is not None
        assert 28 < entry.ttl <= 30

    def test_no_ttl_means_no_expiry(self, backend: CacheBackend, key: str) -> None:
        backend.set(key, b"v", None)
        entry = backend.get(key)
        assert entry is not None
        assert entry.ttl is None
        backend.delete(key)

    def test_entry_expires_after_its_ttl(self, backend: CacheBackend, key: str) -> None:
        backend.set(key, b"v", 0.05)
        time.sleep(0.12)
        assert backend.get(key) is None
        assert not backend.exists(key)

    def test_non_positive_ttl_stores_nothing_and_removes_old_value(
        self, backend: CacheBackend, key: str
    ) -> None:
        backend.set(key, b"old", 60)
        backend.set(key, b"new", 0)
        assert backend.get(key) is None

    def test_set_overwrites(self, backend: CacheBackend, key: str) -> None:
        backend.set(key, b"one", 60)
        backend.set(key, b"two", 60)
        entry = backend.get(key)
        assert entry is not None
        assert entry.value == b"two"

    def test_delete_is_idempotent(self, backend: CacheBackend, key: str) -> None:
        backend.set(key, b"v", 60)
        assert backend.delete(key) is True
        assert backend.delete(key) is False
        assert backend.get(key) is None

    def test_exists_follows_the_value(self, backend: CacheBackend, key: str) -> None:
        assert backend.exists(key) is False
        backend.set(key, b"v", 60)
        assert backend.exists(key) is True

    def test_expire_sets_a_new_ttl_only_on_present_keys(
        self, backend: CacheBackend, key: str
    ) -> None:
        assert backend.expire(key, 10) is False
        backend.set(key, b"v", None)
        assert backend.expire(key, 10) is True
        entry = backend.get(key)
        assert entry is not None
        assert entry.ttl is not None
        assert entry.ttl <= 10

    def test_counters_start_at_zero_and_increment_atomically(
        self, backend: CacheBackend, key: str
    ) -> None:
        assert backend.get_counter(key) == 0
        assert backend.incr(key) == 1
        assert backend.incr(key) == 2
        assert backend.get_counter(key) == 2
        backend.delete(key)

    def test_delete_prefix_removes_only_that_prefix(self, backend: CacheBackend, key: str) -> None:
        backend.set(f"{key}:a", b"1", 60)
        backend.set(f"{key}:b", b"2", 60)
        backend.set(f"{key}x", b"3", 60)
        assert backend.delete_prefix(f"{key}:") == 2
        assert backend.get(f"{key}:a") is None
        assert backend.get(f"{key}x") is not None
        assert backend.delete_prefix(f"{key}:") == 0
        backend.delete(f"{key}x")

    def test_delete_prefix_takes_glob_characters_literally(
        self, backend: CacheBackend, key: str
    ) -> None:
        backend.set(f"{key}[*]:a", b"1", 60)
        backend.set(f"{key}X:a", b"2", 60)
        assert backend.delete_prefix(f"{key}[*]") == 1
        assert backend.get(f"{key}X:a") is not None
        backend.delete(f"{key}X:a")


class TestSharedTierContract:
    def test_counters_start_at_zero_and_count_up(self, shared: SharedTier, key: str) -> None:
        assert shared.get_counter(key) == 0
        assert [shared.incr(key), shared.incr(key)] == [1, 2]
        assert shared.get_counter(key) == 2
        shared.delete(key)

    def test_a_lease_is_taken_once_and_released_only_by_its_holder(
        self, shared: SharedTier, key: str
    ) -> None:
        assert shared.set_if_absent(key, b"mine", 30)
        assert not shared.set_if_absent(key, b"theirs", 30)
        assert not shared.delete_if_equals(key, b"theirs")
        assert shared.exists(key)
        assert shared.delete_if_equals(key, b"mine")
        assert not shared.exists(key)

    def test_delete_matching_reaches_every_slot_and_spares_what_it_keeps(
        self, shared: SharedTier, prefix: str
    ) -> None:
        # Keys without a hash tag spread over the slots (every master of a cluster).
        keys = [f"{prefix}:many:{index}" for index in range(60)]
        for name in keys:
            shared.set(name, b"v", 60)
        kept = keys[0].encode()
        removed = shared.delete_matching(f"{prefix}:many:*", lambda name: name == kept)
        assert removed == 59
        assert [name for name in keys if shared.exists(name)] == [keys[0]]
        assert shared.delete_prefix(f"{prefix}:many:") == 1

    def test_get_value_reads_without_the_ttl(self, shared: SharedTier, key: str) -> None:
        shared.set(key, b"v", 60)
        assert shared.get_value(key) == b"v"
        shared.delete(key)
        assert shared.get_value(key) is None

    def test_the_report_names_the_topology_and_a_writable_server(self, shared: SharedTier) -> None:
        report = shared.describe()
        assert report.topology == shared.topology
        assert report.writable
        assert report.version
        assert any(node.role == "master" and node.answers for node in report.nodes)
        if shared.topology == "cluster":
            assert sum(node.role == "master" for node in report.nodes) == 3
            assert len(report.nodes) == 6

    def test_publish_reaches_a_subscriber(self, shared: SharedTier, prefix: str) -> None:
        pubsub = shared.client.pubsub()
        try:
            pubsub.subscribe(f"{prefix}:channel")
            assert pubsub.get_message(timeout=2)["type"] == "subscribe"
            assert shared.publish(f"{prefix}:channel", b"hello") >= 1
            message = pubsub.get_message(timeout=2)
            assert message is not None
            assert message["data"] == b"hello"
        finally:
            pubsub.close()

    def test_the_asyncio_face_keeps_the_same_contract(self, shared: SharedTier, key: str) -> None:
        async def run() -> list[object]:
            try:
                await shared.aset(key, b"v", 60)
                entry = await shared.aget(key)
                got = [entry.value if entry else None, await shared.aget_value(key)]
                got.append(await shared.aset_if_absent(key + ":lease", b"t", 30))
                got.append(await shared.adelete_if_equals(key + ":lease", b"t"))
                got.append(await shared.aincr(key + ":n"))
                got.append(await shared.adelete_matching(key + "*"))
                got.append(await shared.aexists(key))
                return got
            finally:
                await shared.aclose()

        assert asyncio.run(run()) == [b"v", b"v", True, True, 1, 2, False]
