"""A cached function per library, cold, whose computation counts itself in Redis.

Used by the stampede and outage benchmarks, one library per process:
``build(library, url)`` returns ``(call, is_async)``; ``call(key)`` (or
``await call(key)``) goes through the library's decorator, and the wrapped
computation ``INCR``s ``bench:computations`` on a separate Redis connection
(when ``count_url`` is given) and sleeps ``compute_seconds`` before
returning a small forecast-like dict. Each library is configured as its
documentation shows by default; ``+lock`` variants turn on the library's own
anti-stampede option.

Where a URL is taken, ``cluster:HOST:PORT,HOST:PORT,...`` names a Redis
Cluster instead (its startup nodes): the counter then lives on the cluster,
through a cluster client. ``salescast-cluster`` (not among ``LIBRARIES``:
``bench/topologies.py`` runs it) is salescast's ``TieredCache`` on
``RedisClusterBackend``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
import redis.cluster

CLUSTER = "cluster:"
COUNTER = "bench:computations"
LIBRARIES = (
    "salescast",
    "dogpile.cache",
    "dogpile.cache+lock",
    "cashews",
    "cashews+lock",
    "aiocache",
    "aiocache+lock",
    "fastapi-cache2",
)


def cluster_location(startup_nodes: list[tuple[str, int]]) -> str:
    """The ``cluster:HOST:PORT,...`` location of a cluster, to pass where a URL goes."""
    return CLUSTER + ",".join(f"{host}:{port}" for host, port in startup_nodes)


def cluster_nodes(location: str) -> list[tuple[str, int]]:
    """The startup nodes of a ``cluster:HOST:PORT,...`` location."""
    nodes = []
    for item in location.removeprefix(CLUSTER).split(","):
        host, port = item.rsplit(":", 1)
        nodes.append((host, int(port)))
    return nodes


def counter_client(location: str) -> Any:
    """A redis-py client for a URL, or a cluster client for a ``cluster:`` location."""
    if location.startswith(CLUSTER):
        startup = [redis.cluster.ClusterNode(h, p) for h, p in cluster_nodes(location)]  # type: ignore[no-untyped-call]
        return redis.cluster.RedisCluster(startup_nodes=startup)
    return redis.Redis.from_url(location)


def computation(count_url: str | None, compute_seconds: float) -> Callable[[str], dict[str, Any]]:
    counter = counter_client(count_url) if count_url else None

    def compute(key: str) -> dict[str, Any]:
        if counter is not None:
            counter.incr(COUNTER)
        time.sleep(compute_seconds)
        return {"key": key, "points": [{"yhat": 1.5, "ds": "2016-05-01"}] * 30}

    return compute


def build(library: str, url: str, compute: Callable[[str], Any]) -> tuple[Callable[..., Any], bool]:
    """The decorated function for ``library`` against Redis at ``url``, and whether it is async."""
    builders: dict[str, Callable[[str, Callable[[str], Any]], tuple[Callable[..., Any], bool]]] = {
        "salescast": _salescast,
        "salescast-cluster": _salescast_cluster,
        "dogpile.cache": lambda u, c: _dogpile(u, c, lock=False),
        "dogpile.cache+lock": lambda u, c: _dogpile(u, c, lock=True),
        "cashews": lambda u, c: _cashews(u, c, lock=False),
        "cashews+lock": lambda u, c: _cashews(u, c, lock=True),
        "aiocache": lambda u, c: _aiocache(u, c, lock=False),
        "aiocache+lock": lambda u, c: _aiocache(u, c, lock=True),
        "fastapi-cache2": _fastapi_cache,
    }
    return builders[library](url, compute)


def _salescast(url: str, compute: Callable[[str], Any]) -> tuple[Callable[..., Any], bool]:
    from salescast.cache import TieredCache, cached

    cache = TieredCache.from_url(url, prefix="bench-cold")

    @cached(namespace="prediction", ttl=3600, cache=cache)
    def load(key: str) -> Any:
        return compute(key)

    return load, False


def _salescast_cluster(
    location: str, compute: Callable[[str], Any]
) -> tuple[Callable[..., Any], bool]:
    """As ``_salescast`` (L1 + L2, default settings), L2 on a Redis Cluster."""
    from salescast.cache import TieredCache, cached
    from salescast.cache.backends.redis_cluster import RedisClusterBackend

    cache = TieredCache(l2=RedisClusterBackend(cluster_nodes(location)), prefix="bench-cold")

    @cached(namespace="prediction", ttl=3600, cache=cache)
    def load(key: str) -> Any:
        return compute(key)

    return load, False


def _dogpile(
    url: str, compute: Callable[[str], Any], *, lock: bool
) -> tuple[Callable[..., Any], bool]:
    from dogpile.cache import make_region

    arguments = {"url": url, "redis_expiration_time": 3600, "distributed_lock": lock}
    region = make_region().configure(
        "dogpile.cache.redis", expiration_time=3600, arguments=arguments
    )

    @region.cache_on_arguments()
    def load(key: str) -> Any:
        return compute(key)

    return load, False


def _cashews(
    url: str, compute: Callable[[str], Any], *, lock: bool
) -> tuple[Callable[..., Any], bool]:
    import asyncio

    from cashews import Cache

    cache = Cache()
    cache.setup(url)

    @cache(ttl="1h", lock=lock)
    async def load(key: str) -> Any:
        return await asyncio.to_thread(compute, key)

    return load, True


def _aiocache(
    url: str, compute: Callable[[str], Any], *, lock: bool
) -> tuple[Callable[..., Any], bool]:
    import asyncio

    from aiocache import Cache, cached, cached_stampede

    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    options: dict[str, Any] = {
        "ttl": 3600,
        "cache": Cache.REDIS,
        "endpoint": host,
        "port": int(port),
    }
    decorator = cached_stampede(lease=10, **options) if lock else cached(**options)

    @decorator
    async def load(key: str) -> Any:
        return await asyncio.to_thread(compute, key)

    return load, True


def _fastapi_cache(url: str, compute: Callable[[str], Any]) -> tuple[Callable[..., Any], bool]:
    import asyncio

    import redis.asyncio
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.redis import RedisBackend
    from fastapi_cache.decorator import cache

    FastAPICache.init(RedisBackend(redis.asyncio.from_url(url)), prefix="bench-cold")

    @cache(expire=3600)
    async def load(key: str) -> Any:
        return await asyncio.to_thread(compute, key)

    return load, True
