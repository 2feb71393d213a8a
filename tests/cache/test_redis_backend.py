"""RedisBackend's connection settings: short timeouts, no hidden retries, TLS and auth from URLs."""

from __future__ import annotations

import time

import pytest
import redis

from salescast.cache import (
    BackendUnavailableError,
    BreakerState,
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
