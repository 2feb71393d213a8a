"""The same cached function built with salescast and with each peer library, warm.

Every factory returns a zero-argument callable (sync) or coroutine function
(async) whose call is a cache hit for ``payload``: the decorated function is
called once to fill the cache. ``url`` is a Redis URL, or ``None`` for the
library's in-process store. Each library keeps its default serializer where it
can carry the payload (cashews, dogpile: pickle; aiocache, fastapi-cache2:
JSON) and pickle where it cannot (raw bytes through a JSON serializer).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from salescast.cache import RedisBackend, TieredCache, cached

Sync = Callable[[], object]
Async = Callable[[], Awaitable[object]]
_names = (f"f{n}" for n in itertools.count())


def _salescast_cache(url: str | None) -> TieredCache:
    if url is None:
        return TieredCache(prefix=f"peer-sc-{next(_names)}")  # L1 only
    # L2 alone, so every hit really goes to Redis.
    return TieredCache(l2=RedisBackend(url), use_l1=False, prefix=f"peer-sc-{next(_names)}")


def salescast_sync(url: str | None, payload: Any) -> Sync:
    @cached(namespace="peer", ttl=3600, cache=_salescast_cache(url))
    def load(name: str) -> Any:
        return payload

    load("x")
    return lambda: load("x")


async def salescast_async(url: str | None, payload: Any) -> Async:
    @cached(namespace="peer", ttl=3600, cache=_salescast_cache(url))
    async def load(name: str) -> Any:
        return payload

    await load("x")
    return lambda: load("x")


def dogpile_sync(url: str | None, payload: Any) -> Sync:
    from dogpile.cache import make_region

    if url is None:
        region = make_region().configure("dogpile.cache.memory", expiration_time=3600)
    else:
        region = make_region().configure(
            "dogpile.cache.redis",
            expiration_time=3600,
            arguments={"url": url, "redis_expiration_time": 3600},
        )

    @region.cache_on_arguments(namespace=next(_names))
    def load(name: str) -> Any:
        return payload

    load("x")
    return lambda: load("x")


def lru_cache_sync(url: str | None, payload: Any) -> Sync:
    """functools.lru_cache: the floor for an in-process hit (no TTL, no key hashing)."""
    del url

    @functools.lru_cache(maxsize=128)
    def load(name: str) -> Any:
        return payload

    load("x")
    return lambda: load("x")


async def cashews_async(url: str | None, payload: Any) -> Async:
    from cashews import Cache

    cache = Cache()
    cache.setup(url or "mem://")

    @cache(ttl="1h", prefix=next(_names))
    async def load(name: str) -> Any:
        return payload

    await load("x")
    return lambda: load("x")


async def aiocache_async(url: str | None, payload: Any) -> Async:
    from aiocache import Cache, cached
    from aiocache.serializers import PickleSerializer

    options: dict[str, Any] = {"namespace": next(_names), "ttl": 3600}
    if url is not None:
        host, port = _host_port(url)
        options |= {"cache": Cache.REDIS, "endpoint": host, "port": port}
        if isinstance(payload, bytes):
            options["serializer"] = PickleSerializer()

    @cached(**options)
    async def load(name: str) -> Any:
        return payload

    await load("x")
    return lambda: load("x")


async def fastapi_cache_async(url: str | None, payload: Any) -> Async:
    import redis.asyncio
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.inmemory import InMemoryBackend
    from fastapi_cache.backends.redis import RedisBackend as FastApiRedisBackend
    from fastapi_cache.coder import JsonCoder, PickleCoder
    from fastapi_cache.decorator import cache

    # FastAPICache is process-global: the last init wins, so each factory re-inits.
    backend = InMemoryBackend() if url is None else FastApiRedisBackend(redis.asyncio.from_url(url))
    FastAPICache.init(backend, prefix=next(_names))
    coder = PickleCoder if isinstance(payload, bytes) else JsonCoder

    @cache(expire=3600, coder=coder)
    async def load(name: str) -> Any:
        return payload

    await load("x")
    return lambda: load("x")


def _host_port(url: str) -> tuple[str, int]:
    netloc = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, port = netloc.rsplit(":", 1)
    return host, int(port)


SYNC_PEERS: dict[str, Callable[[str | None, Any], Sync]] = {
    "salescast (sync)": salescast_sync,
    "dogpile.cache": dogpile_sync,
}
ASYNC_PEERS: dict[str, Callable[[str | None, Any], Awaitable[Async]]] = {
    "salescast (async)": salescast_async,
    "cashews": cashews_async,
    "aiocache": aiocache_async,
    "fastapi-cache2": fastapi_cache_async,
}


def versions() -> dict[str, str]:
    """Installed versions of the peers (and redis-py), for the report."""
    from importlib.metadata import version

    names = ("cashews", "aiocache", "dogpile.cache", "fastapi-cache2", "redis")
    return {name: version(name) for name in names}


def run(coroutine: Awaitable[Any]) -> Any:
    """Run a coroutine on a fresh loop (the helpers here never share loops)."""

    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())
