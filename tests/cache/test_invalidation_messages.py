"""Invalidation messages as another process sends them: the counter in Redis has the last word."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from salescast.cache import MISSING, CacheSource, TieredCache
from salescast.cache.invalidation import encode_message
from tests.cache.polling import eventually

MakeCache = Callable[..., TieredCache]
TAG = "product:p1"
BUMPS = 5


def publish_as_someone_else(raw_redis: redis.Redis, cache: TieredCache, **message: Any) -> None:
    raw_redis.publish(cache.keys.channel, encode_message({**message, "origin": "someone-else"}))


def wait_until_heard(raw_redis: redis.Redis, listener: TieredCache) -> None:
    """Return once `listener` has handled every message published before this call.

    A sentinel entry lives only in the listener's L1 (its Redis copy is removed
    behind the cache's back); a `delete` message for it is published last, and
    the subscriber handles messages in order, so once the entry is gone every
    earlier message has been applied.
    """
    listener.set("data", "sentinel", "here", ttl=60)
    sentinel_key = listener.entry_key("data", "sentinel")
    raw_redis.delete(sentinel_key)
    assert listener.get("data", "sentinel").source is CacheSource.HIT_L1
    publish_as_someone_else(raw_redis, listener, op="delete", key=sentinel_key)
    assert eventually(lambda: listener.get("data", "sentinel").value is MISSING)


def test_a_stale_generation_in_a_message_does_not_override_the_counter_in_redis(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    listener, writer = make_cache(), make_cache()
    assert listener.tag_generation(TAG) == 0  # known, and trusted while subscribed
    for _ in range(BUMPS):
        writer.invalidate_tag(TAG)
    assert int(raw_redis.get(writer.keys.tag_counter_key(TAG)) or 0) == BUMPS

    # Delivered late (or sent before a reset): a bump to generation 1.
    publish_as_someone_else(raw_redis, listener, op="tag", tag=TAG, gen=1)
    wait_until_heard(raw_redis, listener)

    assert listener.tag_generation(TAG) == BUMPS
    writer.set("prediction", "p1", "stored by the writer", ttl=60, tags=[TAG])
    assert listener.entry_key("prediction", "p1", tags=(TAG,)) == writer.entry_key(
        "prediction", "p1", tags=(TAG,)
    )
    lookup = listener.get("prediction", "p1", tags=[TAG])
    assert (lookup.value, lookup.source) == ("stored by the writer", CacheSource.HIT_L2)


def test_a_message_naming_a_newer_generation_is_checked_against_redis_too(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    # The other direction: a message claiming generation 99 that Redis never
    # reached (a bump lost with a Redis reset) must not strand the listener
    # on keys no other process uses.
    listener, writer = make_cache(), make_cache()
    writer.invalidate_tag(TAG)
    assert listener.tag_generation(TAG) == 1

    publish_as_someone_else(raw_redis, listener, op="tag", tag=TAG, gen=99)
    wait_until_heard(raw_redis, listener)

    assert listener.tag_generation(TAG) == 1
    writer.set("prediction", "p1", "stored by the writer", ttl=60, tags=[TAG])
    assert listener.get("prediction", "p1", tags=[TAG]).value == "stored by the writer"
