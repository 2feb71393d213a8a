"""L1 keeps decoded objects: shared on hits, charged at their encoded size, decoded once."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import redis

from salescast.cache import CacheSource, MemoryBackend, TieredCache, cached, default_registry
from tests.cache.polling import eventually

MakeCache = Callable[..., TieredCache]


class Reading:
    """A value type with its own codec, so the test can count decodes."""

    def __init__(self, text: str) -> None:
        self.text = text


class CountingCodec:
    codec_id = 200
    python_type: type[Any] = Reading

    def __init__(self) -> None:
        self.decodes = 0

    def encode(self, value: Any) -> bytes:
        return str(value.text).encode()

    def decode(self, data: bytes) -> Any:
        self.decodes += 1
        return Reading(data.decode())


def test_l1_hits_return_the_very_object_that_was_computed(make_cache: MakeCache) -> None:
    cache = make_cache()
    computed = {"points": [1.5, 2.5]}
    first = cache.get_or_compute("prediction", "k", lambda: computed, ttl=60)
    second = cache.get_or_compute("prediction", "k", lambda: {"other": 1}, ttl=60)
    third = cache.get("prediction", "k")
    assert first == (computed, CacheSource.MISS)
    assert second.source is CacheSource.HIT_L1
    assert second.value is computed
    assert third.value is computed


def test_decorated_l1_hits_share_one_object(make_cache: MakeCache) -> None:
    cache = make_cache()

    @cached(namespace="prediction", ttl=60, cache=cache)
    def forecast(product_id: str, horizon: int = 30) -> dict[str, Any]:
        return {"product_id": product_id, "points": list(range(horizon))}

    first = forecast("p1")
    assert forecast("p1") is first
    assert forecast("p1", 30) is first
    assert forecast(product_id="p1", horizon=30) is first


def test_fill_back_from_l2_decodes_once_then_l1_serves_the_object(make_cache: MakeCache) -> None:
    codec = CountingCodec()
    registry = default_registry.copy()
    registry.register(codec)
    writer = make_cache(registry=registry)
    reader = make_cache(registry=registry)
    writer.set("data", "k", Reading("hello"), ttl=60)
    value, source = reader.get_or_compute("data", "k", lambda: Reading("computed"), ttl=60)
    assert source is CacheSource.HIT_L2
    assert value.text == "hello"
    assert codec.decodes == 1
    for _ in range(5):
        hit = reader.get_or_compute("data", "k", lambda: Reading("computed"), ttl=60)
        assert hit.source is CacheSource.HIT_L1
        assert hit.value is value
    assert codec.decodes == 1
    assert writer.get("data", "k").source is CacheSource.HIT_L1  # the writer kept its object
    assert codec.decodes == 1


def test_a_value_that_cannot_be_encoded_is_kept_in_neither_tier(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls: list[int] = []

    @cached(namespace="data", ttl=60, cache=cache)
    def load(product_id: str) -> object:
        calls.append(1)
        return object()

    first = load("p1")
    second = load("p1")
    assert first is not second
    assert calls == [1, 1]
    assert cache.l1 is not None
    assert cache.l1.usage().entries == 0
    assert cache.stats().namespaces["data"].errors == 2


def test_l1_charges_each_object_the_size_of_its_frame(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = make_cache()
    values = {"small": 1, "text": "x" * 50_000, "points": [float(i) for i in range(300)]}
    for name, value in values.items():
        cache.set("data", name, value, ttl=60)
    keys = [cache.entry_key("data", name) for name in values]
    frames = [raw_redis.get(key) for key in keys]
    assert all(frame is not None for frame in frames)
    assert cache.l1 is not None
    expected = sum(
        len(key) + len(frame or b"") + 96 for key, frame in zip(keys, frames, strict=True)
    )
    assert cache.l1.usage().bytes == expected
    assert len(frames[1] or b"") < 1000  # 50 KB of text, compressed: charged as such


def test_the_byte_budget_evicts_by_encoded_size(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = make_cache(l1_max_bytes=8_000)
    blob = os.urandom(3_000)  # incompressible: each frame is just over 3 KB
    for index in range(4):
        cache.set("data", index, blob, ttl=60)
    assert cache.l1 is not None
    usage = cache.l1.usage()
    assert usage.entries == 2
    assert usage.bytes <= 8_000
    assert cache.stats().namespaces["data"].l1.evictions == 2
    assert cache.get("data", 0).source is CacheSource.HIT_L2  # evicted from L1 only
    huge = os.urandom(9_000)
    cache.set("data", "huge", huge, ttl=60)
    assert cache.l1.get_object(cache.entry_key("data", "huge")) is None  # over the whole budget
    assert raw_redis.exists(cache.entry_key("data", "huge"))


def test_another_process_invalidating_a_tag_reaches_remembered_keys(make_cache: MakeCache) -> None:
    cache = make_cache()
    other = make_cache()
    tags = ["product:p1"]
    for _ in range(3):  # the entry key is remembered after the first lookup
        cache.get_or_compute("data", "k", lambda: "old", ttl=60, tags=tags)
    other.invalidate_tag("product:p1")
    assert eventually(
        lambda: cache.get_or_compute("data", "k", lambda: "new", ttl=60, tags=tags).value == "new"
    )


def test_memory_backend_keeps_objects_and_bytes_apart() -> None:
    l1 = MemoryBackend(max_bytes=10_000)
    value = {"a": [1, 2]}
    l1.set_object("obj", value, nbytes=100, ttl=None)
    l1.set("raw", b"abc", None)
    entry = l1.get_object("obj")
    assert entry is not None
    assert entry.value is value
    assert entry.nbytes == 100
    assert l1.get("obj") is None  # the bytes face sees bytes only
    raw = l1.get("raw")
    assert raw is not None
    assert raw.value == b"abc"
    assert l1.usage().bytes == (3 + 100 + 96) + (3 + 3 + 96)
    assert l1.delete("obj") is True
    assert l1.usage().bytes == 3 + 3 + 96


@pytest.mark.anyio
async def test_async_tagged_hits_share_the_object_until_the_tag_is_invalidated(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    runs: list[int] = []

    @cached(namespace="prediction", ttl=60, cache=cache, tags=lambda p: [f"product:{p}"])
    async def forecast(product_id: str) -> dict[str, Any]:
        runs.append(1)
        return {"product_id": product_id, "run": len(runs)}

    first = await forecast("p1")
    assert await forecast("p1") is first
    cache.invalidate_tag("product:p1")
    second = await forecast("p1")
    assert second == {"product_id": "p1", "run": 2}
    assert await forecast("p1") is second
    await cache.aclose()
