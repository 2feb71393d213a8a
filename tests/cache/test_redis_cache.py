"""The seed's public names: RedisCache and ModelCache."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from salescast.cache import ModelCache, RedisCache, TieredCache
from tests.cache.polling import eventually
from tests.support.redis_server import RedisServer

MakeCache = Callable[..., TieredCache]


@pytest.fixture
def redis_cache(redis_server: RedisServer, prefix: str) -> Iterator[RedisCache]:
    cache = RedisCache(
        host=redis_server.host,
        port=redis_server.port,
        db=0,
        socket_timeout=0.25,
        max_connections=50,
        prefix=prefix,
    )
    yield cache
    cache.close()


def test_get_set_exists_expire_delete(redis_cache: RedisCache) -> None:
    assert redis_cache.get("k") is None
    assert redis_cache.get("k", default="d") == "d"
    assert redis_cache.set("k", {"a": [1, 2]}, ttl=60) is True
    assert redis_cache.get("k") == {"a": [1, 2]}
    assert redis_cache.exists("k") is True
    assert redis_cache.expire("k", 5) is True
    assert redis_cache.delete("k") is True
    assert redis_cache.exists("k") is False
    assert redis_cache.expire("k", 5) is False


def test_clear_removes_only_this_prefix(
    redis_cache: RedisCache, raw_redis: redis.Redis, prefix: str
) -> None:
    raw_redis.set(f"{prefix}x:kv:other", b"keep")
    for index in range(5):
        redis_cache.set(f"k{index}", index, ttl=60)
    assert redis_cache.clear() == 5
    assert redis_cache.get("k1") is None
    assert raw_redis.get(f"{prefix}x:kv:other") == b"keep"
    raw_redis.delete(f"{prefix}x:kv:other")


def test_stats_and_health_are_typed_snapshots(redis_cache: RedisCache) -> None:
    redis_cache.set("k", 1, ttl=60)
    redis_cache.get("k")
    redis_cache.get("absent")
    stats = redis_cache.stats().namespaces["kv"]
    assert (stats.l2.hits, stats.misses, stats.l2.sets) == (1, 1, 1)
    health = redis_cache.health()
    assert health.redis_reachable is True
    assert health.breaker_state == "closed"


def test_from_url_accepts_a_password(prefix: str) -> None:
    with RedisServer(password="pa55") as server:
        with RedisCache.from_url(server.url, prefix=prefix) as cache:
            assert cache.set("k", b"bytes", ttl=60) is True
            assert cache.get("k") == b"bytes"
        with RedisCache.from_url(server.url.replace("pa55", "wrong"), prefix=prefix) as cache:
            assert cache.set("k", 1, ttl=60) is False
            assert cache.health().redis_reachable is False


def test_model_cache_stores_models_and_predictions_by_version(make_cache: MakeCache) -> None:
    models = ModelCache(make_cache())
    assert models.get_model("p1", 3) is None
    assert models.put_model("p1", 3, {"params": [1, 2]})
    assert models.get_model("p1", 3) == {"params": [1, 2]}
    assert models.get_model("p1", 4) is None
    assert models.put_prediction("p1", 3, {"horizon": 30}, [{"yhat": 1.0}])
    assert models.get_prediction("p1", 3, {"horizon": 30}) == [{"yhat": 1.0}]
    assert models.get_prediction("p1", 3, {"horizon": 7}) is None


def test_invalidating_a_product_reaches_every_process_cache(make_cache: MakeCache) -> None:
    first = ModelCache(make_cache())
    second = ModelCache(make_cache())
    first.put_model("p1", 3, "model p1")
    first.put_model("p2", 3, "model p2")
    assert second.get_model("p1", 3) == "model p1"
    first.invalidate_product("p1")
    assert first.get_model("p1", 3) is None
    # Other processes hear it over pub/sub, a few milliseconds later.
    assert eventually(lambda: second.get_model("p1", 3) is None)
    assert second.get_model("p2", 3) == "model p2"
