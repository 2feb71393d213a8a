"""Builds the service's TieredCache from Settings (the cache package itself knows no Settings)."""

from __future__ import annotations

from urllib.parse import quote

from salescast.cache import TieredCache
from salescast.config import Settings


def redis_url_from(settings: Settings) -> str | None:
    """`SALESCAST_REDIS_URL`, else one built from host/port/db, else None (L1 only)."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value() or None
    if settings.redis_host:
        host = quote(settings.redis_host, safe="")
        return f"redis://{host}:{settings.redis_port}/{settings.redis_db}"
    return None


def build_cache(settings: Settings) -> TieredCache:
    """L1 always; Redis L2 when configured. Never connects eagerly: a Redis that is
    down at start only means L2 misses until it answers (the breaker probes it)."""
    secret = settings.cache_secret.get_secret_value() if settings.cache_secret else None
    return TieredCache.from_url(
        redis_url_from(settings),
        prefix=settings.cache_prefix,
        socket_timeout=settings.redis_socket_timeout_seconds,
        socket_connect_timeout=settings.redis_connect_timeout_seconds,
        max_connections=settings.redis_max_connections,
        l1_max_bytes=settings.cache_l1_max_bytes,
        secret=secret,
    )
