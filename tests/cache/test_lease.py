"""The computation lease as another process would see it, simulated with raw Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

from salescast.cache import CacheSource, TieredCache

MakeCache = Callable[..., TieredCache]


def test_a_hit_never_touches_the_lease(make_cache: MakeCache) -> None:
    writer = make_cache()
    reader = make_cache()
    writer.set("data", "k", "v", ttl=60)
    assert reader.l2 is not None
    before = reader.l2.calls
    assert reader.get_or_compute("data", "k", lambda: "x", ttl=60).source is CacheSource.HIT_L2
    assert reader.l2.calls == before + 1  # one GET+PTTL round trip, nothing else
    assert reader.get_or_compute("data", "k", lambda: "x", ttl=60).source is CacheSource.HIT_L1
    assert reader.l2.calls == before + 1


def test_a_waiter_takes_the_value_the_lease_holder_stores(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    holder = make_cache()
    waiter = make_cache()
    lease_key = holder.keys.lease_key(holder.entry_key("data", "k"))
    raw_redis.set(lease_key, b"other-process", px=5000)

    def finish_elsewhere() -> None:
        time.sleep(0.2)
        holder.set("data", "k", "from the holder", ttl=60)
        raw_redis.delete(lease_key)

    thread = threading.Thread(target=finish_elsewhere)
    thread.start()
    calls: list[int] = []
    value, source = waiter.get_or_compute("data", "k", lambda: calls.append(1) or "mine", ttl=60)
    thread.join()
    assert (value, source) == ("from the holder", CacheSource.HIT_L2)
    assert calls == []


def test_a_waiter_computes_itself_when_the_lease_expires(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    waiter = make_cache(lease_ttl=0.3)
    lease_key = waiter.keys.lease_key(waiter.entry_key("data", "k"))
    raw_redis.set(lease_key, b"stuck-process", px=60_000)
    started = time.perf_counter()
    value, source = waiter.get_or_compute("data", "k", lambda: "mine", ttl=60)
    elapsed = time.perf_counter() - started
    assert (value, source) == ("mine", CacheSource.MISS)
    assert 0.25 < elapsed < 1.5
    assert raw_redis.get(lease_key) == b"stuck-process"  # never released by a non-owner
    raw_redis.delete(lease_key)


def test_the_owner_releases_its_lease_after_computing(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = make_cache()
    lease_key = cache.keys.lease_key(cache.entry_key("data", "k"))
    seen: list[bytes | None] = []

    def compute() -> str:
        seen.append(raw_redis.get(lease_key))
        return "v"

    cache.get_or_compute("data", "k", compute, ttl=60)
    assert seen[0] is not None  # held while computing
    assert raw_redis.exists(lease_key) == 0


def test_release_deletes_only_the_owners_token(make_cache: MakeCache, prefix: str) -> None:
    cache = make_cache()
    assert cache.l2 is not None
    lease_key = f"{prefix}:_lease:test"
    assert cache.l2.set_if_absent(lease_key, b"token-a", 5)
    assert not cache.l2.set_if_absent(lease_key, b"token-b", 5)
    assert not cache.l2.delete_if_equals(lease_key, b"token-b")
    assert cache.l2.delete_if_equals(lease_key, b"token-a")
    assert not cache.l2.exists(lease_key)
