"""One contract suite, run against every backend (memory and Redis)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from salescast.cache import CacheBackend, MemoryBackend, RedisBackend
from tests.support.redis_server import RedisServer


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[CacheBackend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    redis_backend = RedisBackend(redis_server.url)
    yield redis_backend
    redis_backend.close()


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
