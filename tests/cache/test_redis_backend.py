"""RedisBackend's connection settings: short timeouts, no hidden retries, TLS and auth from
URLs; and the connections the hit path keeps between calls."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from salescast.cache import (
    BackendUnavailableError,
    BreakerState,
    CacheSource,
    PoolExhaustedError,
    RedisBackend,
    TieredCache,
)
from tests.support.redis_server import RedisServer, free_port


def test_connections_fail_fast_without_retries() -> None:
    backend = RedisBackend(host="127.0.0.1", port=6390)
    connection = backend.client.connection_pool.make_connection()
    try:
        assert connection.retry.get_retries() == 0
        assert connection.socket_timeout == 0.25
        assert connection.socket_connect_timeout == 0.25
    finally:
        connection.disconnect()
        backend.close()


def test_pool_holds_fifty_connections_by_default() -> None:
    backend = RedisBackend.from_url("redis://127.0.0.1:6390/3")
    try:
        assert backend.client.connection_pool.max_connections == 50
        assert backend.address == "127.0.0.1:6390/3"
    finally:
        backend.close()


def test_rediss_url_uses_tls_and_carries_credentials() -> None:
    backend = RedisBackend.from_url("rediss://user:secret@127.0.0.1:6390/1")
    try:
        pool = backend.client.connection_pool
        assert pool.connection_class is redis.SSLConnection
        assert pool.connection_kwargs["password"] == "secret"
        assert pool.connection_kwargs["username"] == "user"
        assert "secret" not in backend.address
    finally:
        backend.close()


def test_unreachable_server_raises_one_error_type_quickly() -> None:
    backend = RedisBackend(host="127.0.0.1", port=free_port())
    try:
        started = time.perf_counter()
        with pytest.raises(BackendUnavailableError):
            backend.get("k")
        assert time.perf_counter() - started < 0.5
        assert backend.calls == 1
    finally:
        backend.close()


def test_a_busy_pool_is_an_error_of_the_call_but_does_not_open_the_breaker(
    redis_server: RedisServer, prefix: str
) -> None:
    cache = TieredCache(
        l2=RedisBackend(redis_server.url, max_connections=1), prefix=prefix, subscribe=False
    )
    assert cache.l2 is not None
    holder = cache.l2.client.pubsub()
    holder.subscribe(f"{prefix}-hold")  # takes the pool's only connection
    try:
        with pytest.raises(PoolExhaustedError):
            cache.l2.get("k")
        for index in range(5):
            assert cache.get_or_compute("data", index, lambda i=index: i, ttl=60).value == index
        assert cache.breaker.state is BreakerState.CLOSED
        assert cache.stats().namespaces["data"].l2.errors == 5
    finally:
        holder.close()
        cache.close()


def test_an_error_reply_to_get_never_leaves_a_reply_behind_on_a_pooled_connection(
    redis_backend: RedisBackend, raw_redis: redis.Redis, prefix: str
) -> None:
    raw_redis.rpush(f"{prefix}:list", b"x")  # GET on a list: WRONGTYPE error reply
    raw_redis.set(f"{prefix}:a", b"A", px=60_000)
    raw_redis.set(f"{prefix}:b", b"B")
    with pytest.raises(BackendUnavailableError, match="WRONGTYPE"):
        redis_backend.get(f"{prefix}:list")
    for _ in range(3):  # every pooled connection answers its own commands
        entry_a = redis_backend.get(f"{prefix}:a")
        entry_b = redis_backend.get(f"{prefix}:b")
        assert entry_a is not None
        assert entry_b is not None
        assert (entry_a.value, entry_b.value, entry_b.ttl) == (b"A", b"B", None)
        assert entry_a.ttl is not None
        assert 50 < entry_a.ttl <= 60
    raw_redis.delete(f"{prefix}:list", f"{prefix}:a", f"{prefix}:b")


# -- the hit path's own connections -----------------------------------------


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of this test's own, to restart."""
    with RedisServer() as server:
        yield server


def test_a_restart_between_two_reads_costs_the_next_read_nothing(own_server: RedisServer) -> None:
    backend = RedisBackend(own_server.url)
    raw = redis.Redis.from_url(own_server.url, protocol=2)
    try:
        raw.set("k", b"before")
        assert backend.get_value("k") == b"before"  # its connection is kept for the next read
        own_server.restart()
        raw.set("k", b"after")
        # The kept connection is dead; the read is made once more on a fresh one.
        assert backend.get_value("k") == b"after"
        entry = backend.get("k")
        assert entry is not None
        assert entry.value == b"after"
        assert backend.calls == 3
    finally:
        raw.close()
        backend.close()


@pytest.mark.anyio
async def test_asyncio_a_restart_between_two_reads_costs_the_next_read_nothing(
    own_server: RedisServer,
) -> None:
    backend = RedisBackend(own_server.url)
    raw = redis.Redis.from_url(own_server.url, protocol=2)
    try:
        raw.set("k", b"before")
        assert await backend.aget_value("k") == b"before"
        own_server.restart()
        raw.set("k", b"after")
        assert await backend.aget_value("k") == b"after"
        entry = await backend.aget("k")
        assert entry is not None
        assert entry.value == b"after"
    finally:
        raw.close()
        await backend.aclose()
        backend.close()


def test_a_timeout_on_a_kept_connection_is_not_repeated(own_server: RedisServer) -> None:
    backend = RedisBackend(own_server.url)
    try:
        assert backend.get_value("k") is None  # keeps its connection
        own_server.freeze()
        try:
            started = time.perf_counter()
            with pytest.raises(BackendUnavailableError, match="Timeout"):
                backend.get_value("k")
            assert time.perf_counter() - started < 0.45  # one 0.25 s timeout, not two
        finally:
            own_server.thaw()
        assert backend.get_value("k") is None
    finally:
        backend.close()


@pytest.mark.anyio
async def test_the_hit_path_keeps_at_most_half_the_pool(
    redis_server: RedisServer, raw_redis: redis.Redis, prefix: str
) -> None:
    backend = RedisBackend(redis_server.url, max_connections=4)
    raw_redis.set(f"{prefix}:k", b"v")
    try:
        # Twelve reads at once: the pool lends all four connections.
        replies = await asyncio.gather(*(backend.aget_value(f"{prefix}:k") for _ in range(12)))
        assert replies == [b"v"] * 12
        # Two stay with the hit path; the other two serve everything else.
        holder = backend._aclient().pubsub()
        await holder.subscribe(f"{prefix}-hold")
        try:
            assert await backend.aset_if_absent(f"{prefix}:lease", b"token", 60)
        finally:
            await holder.aclose()
    finally:
        await backend.aclose()
        backend.close()
        raw_redis.delete(f"{prefix}:k", f"{prefix}:lease")


def test_a_small_pool_keeps_room_for_the_subscriber_and_the_writes(
    redis_server: RedisServer, prefix: str
) -> None:
    # Two connections: the invalidation subscriber holds one, so the hit path
    # keeps none, and the miss's lease and write get the other.
    cache = TieredCache(l2=RedisBackend(redis_server.url, max_connections=2), prefix=prefix)
    try:
        for round_ in range(2):
            for index in range(3):
                found = cache.get_or_compute("data", index, lambda i=index: i, ttl=60)
                assert found.value == index
                assert found.source is (CacheSource.MISS if round_ == 0 else CacheSource.HIT_L2)
                assert cache.l1 is not None
                cache.l1.clear()
        l2 = cache.stats().namespaces["data"].l2
        assert (l2.errors, l2.sets, l2.hits) == (0, 3, 3)
    finally:
        cache.close()


def test_close_gives_the_kept_connections_back_to_the_pool(
    redis_server: RedisServer, raw_redis: redis.Redis, prefix: str
) -> None:
    backend = RedisBackend(redis_server.url, max_connections=3)
    raw_redis.set(f"{prefix}:k", b"v")
    holders: list[Any] = []
    try:
        assert backend.get_value(f"{prefix}:k") == b"v"  # one connection kept
        backend.close()
        # A closed backend may be used again, with its whole pool.
        for index in range(3):
            holder = backend.client.pubsub()
            holder.subscribe(f"{prefix}-hold-{index}")
            holders.append(holder)
    finally:
        for holder in holders:
            holder.close()
        backend.close()
        raw_redis.delete(f"{prefix}:k")


def _read_in_child(backend: RedisBackend, key: str, expected: bytes, out: Any) -> None:
    wrong = sum(backend.get_value(key) != expected for _ in range(300))
    out.send(wrong)


def test_a_forked_child_does_not_share_the_parents_kept_connections(
    redis_server: RedisServer, raw_redis: redis.Redis, prefix: str
) -> None:
    backend = RedisBackend(redis_server.url)
    raw_redis.set(f"{prefix}:parent", b"P" * 1000)
    raw_redis.set(f"{prefix}:child", b"C" * 1000)
    try:
        assert backend.get_value(f"{prefix}:parent") == b"P" * 1000  # keeps a connection
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_read_in_child, args=(backend, f"{prefix}:child", b"C" * 1000, sender)
        )
        child.start()
        # Both read at the same time: on one shared socket, replies would cross.
        wrong = sum(backend.get_value(f"{prefix}:parent") != b"P" * 1000 for _ in range(300))
        child.join(30)
        assert child.exitcode == 0
        assert (wrong, receiver.recv()) == (0, 0)
    finally:
        backend.close()
        raw_redis.delete(f"{prefix}:parent", f"{prefix}:child")
