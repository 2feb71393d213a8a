"""TieredCache against a real Redis: order of tiers, fill-back, misses, stats, clearing."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import orjson
import pytest
import redis
from redis.crc import key_slot

from salescast.cache import (
    MISSING,
    CacheSource,
    TieredCache,
    last_cache_source,
)
from tests.cache.polling import eventually

MakeCache = Callable[..., TieredCache]


def test_first_call_computes_then_l1_serves(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls: list[int] = []
    first = cache.get_or_compute("data", "k", lambda: calls.append(1) or {"v": 1}, ttl=60)
    second = cache.get_or_compute("data", "k", lambda: calls.append(1) or {"v": 2}, ttl=60)
    assert first == ({"v": 1}, CacheSource.MISS)
    assert second == ({"v": 1}, CacheSource.HIT_L1)
    assert calls == [1]
    assert last_cache_source.get() is CacheSource.HIT_L1


def test_l2_hit_is_promoted_into_l1_with_the_remaining_ttl(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    writer = make_cache()
    reader = make_cache()
    writer.set("data", "k", [1, 2], ttl=100)
    key = writer.entry_key("data", "k")
    raw_redis.pexpire(key, 5000)
    value, source = reader.get_or_compute("data", "k", lambda: [9], ttl=100)
    assert (value, source) == ([1, 2], CacheSource.HIT_L2)
    assert reader.l1 is not None
    entry = reader.l1.get_object(key)
    assert entry is not None
    assert entry.value == [1, 2]
    assert entry.expires_at is not None
    assert entry.expires_at - time.monotonic() <= 5.0
    assert reader.get("data", "k").source is CacheSource.HIT_L1


def test_none_and_bytes_results_are_cached(make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.get_or_compute("data", "none", lambda: None, ttl=60).source is CacheSource.MISS
    assert cache.get_or_compute("data", "none", lambda: 1, ttl=60) == (None, CacheSource.HIT_L1)
    cache.get_or_compute("data", "bytes", lambda: b"\x00raw", ttl=60)
    assert cache.l1 is not None
    cache.l1.clear()
    value, source = cache.get_or_compute("data", "bytes", lambda: b"other", ttl=60)
    assert (value, source) == (b"\x00raw", CacheSource.HIT_L2)
    assert type(value) is bytes


def test_garbage_in_redis_is_a_counted_miss(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = make_cache()
    raw_redis.set(cache.entry_key("data", "k"), b"\x80\x04not a frame")
    value, source = cache.get_or_compute("data", "k", lambda: "fresh", ttl=60)
    assert (value, source) == ("fresh", CacheSource.MISS)
    stats = cache.stats().namespaces["data"]
    assert stats.l2.errors == 1
    assert stats.errors == 1


def test_value_signed_with_another_secret_is_a_miss(make_cache: MakeCache) -> None:
    make_cache(secret="one").set("data", "k", "forged", ttl=60)
    value, source = make_cache(secret="two").get_or_compute("data", "k", lambda: "real", ttl=60)
    assert (value, source) == ("real", CacheSource.MISS)


def test_unencodable_result_is_returned_but_not_cached(make_cache: MakeCache) -> None:
    cache = make_cache()
    marker = object()
    assert cache.get_or_compute("data", "k", lambda: marker, ttl=60).value is marker
    assert cache.get("data", "k").value is MISSING
    assert cache.stats().namespaces["data"].errors == 1


def test_a_new_version_never_reads_old_entries(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_compute("model", "p1", lambda: "v1 model", ttl=60, version=1)
    value, source = cache.get_or_compute("model", "p1", lambda: "v2 model", ttl=60, version=2)
    assert (value, source) == ("v2 model", CacheSource.MISS)


def test_invalidate_tag_makes_tagged_entries_unreachable(make_cache: MakeCache) -> None:
    cache = make_cache()
    tags = ["product:p1"]
    cache.get_or_compute("prediction", 1, lambda: "a", ttl=60, tags=tags)
    cache.get_or_compute("prediction", 2, lambda: "other", ttl=60, tags=["product:p2"])
    assert cache.invalidate_tag("product:p1") == 1
    assert cache.get("prediction", 1, tags=tags).value is MISSING
    assert cache.get("prediction", 2, tags=["product:p2"]).value == "other"


def test_clear_of_a_namespace_leaves_other_namespaces_and_foreign_keys(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = make_cache()
    raw_redis.set(f"{prefix}-foreign:data:x", b"keep")
    raw_redis.set(f"foreign-{prefix}", b"keep")
    for index in range(30):
        cache.set("data", index, index, ttl=60)
    cache.set("model", "m", "model", ttl=60)
    removed = cache.clear(namespace="data")
    assert removed == 60  # 30 in L1 + 30 in L2
    assert cache.get("data", 3).value is MISSING
    assert cache.get("model", "m").value == "model"
    assert raw_redis.get(f"{prefix}-foreign:data:x") == b"keep"
    assert raw_redis.get(f"foreign-{prefix}") == b"keep"
    raw_redis.delete(f"{prefix}-foreign:data:x", f"foreign-{prefix}")


def test_clear_of_a_tag_unlinks_its_entries_in_redis(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = make_cache()
    cache.set("prediction", 1, "a", ttl=60, tags=["product:p1"])
    cache.set("prediction", 2, "b", ttl=60, tags=["product:p2"])
    cache.clear(tag="product:p1")
    left = sorted(key.decode() for key in raw_redis.scan_iter(match=f"{prefix}:prediction:*"))
    assert len(left) == 1
    assert "{" + prefix + ":product:p2}" in left[0]


def test_clear_everything_keeps_tag_generations(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.invalidate_tag("product:p1")
    cache.set("data", "k", 1, ttl=60)
    cache.clear()
    assert cache.get("data", "k").value is MISSING
    assert cache.invalidate_tag("product:p1") == 2


def test_l1_only_cache_works_without_redis() -> None:
    cache = TieredCache.from_url(None, prefix="local")
    assert cache.l2 is None
    cache.get_or_compute("data", "k", lambda: 1, ttl=60, tags=["product:p1"])
    assert cache.get("data", "k", tags=["product:p1"]).source is CacheSource.HIT_L1
    cache.invalidate_tag("product:p1")
    assert cache.get("data", "k", tags=["product:p1"]).value is MISSING
    assert cache.health().backend == "memory"
    cache.close()


def test_stats_count_hits_per_tier_misses_sets_and_latency(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_compute("prediction", "k", lambda: "v", ttl=60)
    cache.get_or_compute("prediction", "k", lambda: "v", ttl=60)
    assert cache.l1 is not None
    cache.l1.clear()
    cache.get_or_compute("prediction", "k", lambda: "v", ttl=60)
    stats = cache.stats().namespaces["prediction"]
    assert (stats.l1.hits, stats.l2.hits, stats.misses, stats.computations) == (1, 1, 1, 1)
    assert stats.l2.sets == 1
    assert stats.l1.sets == 2
    assert stats.l2.bytes_read > 0
    assert stats.l2.latency.count == 2
    assert 0 < stats.l2.latency.p50_ms <= stats.l2.latency.p99_ms
    assert stats.hit_rate == pytest.approx(2 / 3)
    as_dict = cache.stats().as_dict()
    assert as_dict["namespaces"]["prediction"]["hits"] == 2
    assert as_dict["subscription"] in {"connecting", "subscribed"}


def test_l1_evictions_are_counted_per_namespace(make_cache: MakeCache) -> None:
    cache = make_cache(l1_max_entries=5)
    for index in range(8):
        cache.set("data", index, index, ttl=60)
    assert cache.stats().namespaces["data"].l1.evictions == 3
    assert cache.stats().l1 is not None


def test_health_reports_version_breaker_and_l1(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.set("data", "k", 1, ttl=60)
    health = cache.health()
    assert health.backend == "redis"
    assert health.redis_reachable is True
    assert health.redis_version is not None
    assert health.redis_version.startswith(("6", "7", "8"))
    assert health.breaker_state == "closed"
    assert health.l1_entries == 1


def test_a_products_keys_share_one_cluster_slot(make_cache: MakeCache) -> None:
    cache = make_cache()
    tags = ("product:p1",)
    keys = [
        cache.entry_key("prediction", 1, version=3, tags=tags),
        cache.entry_key("model", "m", version=3, tags=tags),
        cache.entry_key("data", ("a", "b"), tags=tags),
    ]
    keys += [cache.keys.tag_counter_key("product:p1"), cache.keys.lease_key(keys[0])]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    other = cache.entry_key("prediction", 1, version=3, tags=("product:p2",))
    assert key_slot(other.encode()) != key_slot(keys[0].encode())


def test_stats_snapshots_are_frozen(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_compute("data", "k", lambda: 1, ttl=60)
    snapshot = cache.stats()
    cache.get_or_compute("data", "k", lambda: 1, ttl=60)
    assert snapshot.namespaces["data"].l1.hits == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.namespaces["data"].l1.hits = 5  # type: ignore[misc]


@pytest.mark.anyio
async def test_async_set_and_delete_reach_both_tiers(make_cache: MakeCache) -> None:
    cache = make_cache()
    assert await cache.aset("data", "k", {"a": 1}, ttl=60, tags=["product:p1"]) is True
    assert cache.l1 is not None
    cache.l1.clear()
    assert cache.get("data", "k", tags=["product:p1"]) == ({"a": 1}, CacheSource.HIT_L2)
    assert (await cache.aget("data", "k", tags=["product:p1"])).source is CacheSource.HIT_L1
    assert await cache.adelete("data", "k", tags=["product:p1"]) is True
    assert cache.get("data", "k", tags=["product:p1"]).value is MISSING
    assert (await cache.aget("data", "k", tags=["product:p1"])) == (MISSING, CacheSource.MISS)
    await cache.aclose()


def test_a_late_invalidation_message_never_moves_a_generation_back(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = make_cache()
    cache.invalidate_tag("product:p1")
    cache.invalidate_tag("product:p1")
    assert cache.subscriber is not None
    heard = cache.subscriber.messages
    stale = orjson.dumps({"op": "tag", "tag": "product:p1", "gen": 1, "origin": "elsewhere"})
    raw_redis.publish(cache.keys.channel, stale)
    assert eventually(lambda: cache.subscriber is not None and cache.subscriber.messages > heard)
    assert cache.tag_generation("product:p1") == 2  # re-read from Redis, not taken from the message


def test_a_generation_read_racing_an_invalidation_is_not_remembered(
    make_cache: MakeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache()
    assert cache.l2 is not None
    real_read = cache.l2.get_counter

    def read_while_an_invalidation_arrives(key: str) -> int:
        value = real_read(key)
        cache.tags.on_message({"op": "tag", "tag": "product:p9", "origin": "elsewhere"})
        return value

    monkeypatch.setattr(cache.l2, "get_counter", read_while_an_invalidation_arrives)
    cache.tag_generation("product:p9")
    monkeypatch.setattr(cache.l2, "get_counter", real_read)
    before = cache.l2.calls
    cache.tag_generation("product:p9")
    assert cache.l2.calls == before + 1  # the raced answer was not trusted: read again
    cache.tag_generation("product:p9")
    assert cache.l2.calls == before + 1  # this one was remembered


def test_a_forked_child_does_not_trust_the_parents_subscription(make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.subscriber is not None
    assert cache.subscriber.listening()
    assert cache.tags.trusting()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child reports through the pipe)
        answer = b"1" if cache.subscriber.listening() or cache.tags.trusting() else b"0"
        os.write(write_end, answer)
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 1)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert answer == b"0"
    assert cache.subscriber.listening()  # the parent still hears everything


def test_peek_answers_from_l1_only_and_never_touches_redis(make_cache: MakeCache) -> None:
    writer, reader = make_cache(), make_cache()
    assert reader.l2 is not None
    writer.set("data", "k", {"v": 1}, ttl=60, tags=["product:p1"])
    writer.set("data", "plain", [1], ttl=60)
    calls = reader.l2.calls
    # In Redis but not in this process's L1: a peek is a miss, without I/O,
    # also when the tag's generation is unknown here (reading it is I/O).
    assert reader.peek("data", "k", tags=["product:p1"]) is MISSING
    assert reader.peek("data", "plain") is MISSING
    assert reader.l2.calls == calls
    stats = reader.stats().namespaces.get("data")
    assert stats is None or (stats.misses, stats.l1.misses) == (0, 0)  # the lookup counts them
    # Once a full lookup filled L1, the peek finds it and counts one L1 hit.
    assert reader.get("data", "k", tags=["product:p1"]).source is CacheSource.HIT_L2
    calls = reader.l2.calls
    last_cache_source.set(None)
    assert reader.peek("data", "k", tags=["product:p1"]) == {"v": 1}
    assert last_cache_source.get() is CacheSource.HIT_L1
    assert reader.l2.calls == calls
    assert reader.stats().namespaces["data"].l1.hits == 1
