"""Builds the service's TieredCache from Settings (the cache package itself knows no Settings)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from salescast.cache import MemoryBackend, RedisBackend, TieredCache
from salescast.cache.backends.redis_sentinel import RedisSentinelBackend
from salescast.cache.shared_tier import SharedTier
from salescast.config import Settings, parse_addresses


def redis_url_from(settings: Settings) -> str | None:
    """`SALESCAST_REDIS_URL`, else one built from host/port/db, else None (L1 only)."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value() or None
    if settings.redis_host:
        host = quote(settings.redis_host, safe="")
        return f"redis://{host}:{settings.redis_port}/{settings.redis_db}"
    return None


def build_l2(settings: Settings) -> SharedTier | None:
    """The shared tier the settings ask for, or None: one server, Sentinel or a cluster.

    Under Sentinel or a cluster the URL carries only credentials, the
    database and the scheme; with certificate files and no URL, TLS is on
    (``rediss://``). Nothing connects here.
    """
    url = redis_url_from(settings)
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_seconds,
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "max_connections": settings.redis_max_connections,
        "ssl_ca_certs": settings.redis_ssl_ca_certs,
        "ssl_certfile": settings.redis_ssl_certfile,
        "ssl_keyfile": settings.redis_ssl_keyfile,
    }
    tls = bool(settings.redis_ssl_ca_certs or settings.redis_ssl_certfile)
    topology_url = url or ("rediss://" if tls else "redis://")
    if settings.redis_sentinels and settings.redis_sentinel_master:
        password = settings.redis_sentinel_password
        return RedisSentinelBackend(
            parse_addresses(settings.redis_sentinels),
            settings.redis_sentinel_master,
            url=topology_url,
            sentinel_password=password.get_secret_value() if password is not None else None,
            **options,
        )
    if settings.redis_cluster_nodes:
        from salescast.cache.backends.redis_cluster import RedisClusterBackend

        return RedisClusterBackend(
            parse_addresses(settings.redis_cluster_nodes), url=topology_url, **options
        )
    if url is None:
        return None
    return RedisBackend(url, **options)


def build_cache(settings: Settings) -> TieredCache:
    """L1 always; Redis L2 when configured. Never connects eagerly: a Redis that is
    down at start only means L2 misses until it answers (the breaker probes it)."""
    secret = settings.cache_secret.get_secret_value() if settings.cache_secret else None
    return TieredCache(
        l2=build_l2(settings),
        l1=MemoryBackend(max_bytes=settings.cache_l1_max_bytes),
        prefix=settings.cache_prefix,
        secret=secret,
        max_lifetime=settings.cache_max_lifetime_seconds,
        stale_window=settings.cache_stale_seconds,
    )
