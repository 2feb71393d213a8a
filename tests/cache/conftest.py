"""Fixtures for the cache tests: one real redis-server per session, a prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from salescast.cache import MemoryBackend, RedisBackend, TieredCache
from tests.support.redis_server import RedisServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def raw_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client for looking behind the cache's back."""
    client = redis.Redis(host=redis_server.host, port=redis_server.port, protocol=2)
    yield client
    client.close()


@pytest.fixture
def make_cache(redis_server: RedisServer, prefix: str) -> Iterator[Callable[..., TieredCache]]:
    """Build TieredCaches on the session server (or L1 only with url=None); closed after."""
    made: list[TieredCache] = []

    def make(url: Any = "session", **options: Any) -> TieredCache:
        options.setdefault("prefix", prefix)
        target = redis_server.url if url == "session" else url
        cache = TieredCache.from_url(target, **options)
        made.append(cache)
        # The first subscription empties L1 (nothing cached before it may be
        # trusted); wait for it so tests start from a settled cache.
        assert cache.wait_subscribed(5.0)
        return cache

    yield make
    for cache in made:
        cache.close()


@pytest.fixture
def redis_backend(redis_server: RedisServer) -> Iterator[RedisBackend]:
    backend = RedisBackend(redis_server.url)
    yield backend
    backend.close()


@pytest.fixture
def memory_backend() -> MemoryBackend:
    return MemoryBackend()
