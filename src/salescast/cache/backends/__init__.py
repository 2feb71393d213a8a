"""Backends move bytes: an in-process LRU (L1) and Redis (L2)."""

from salescast.cache.backends.base import AsyncCacheBackend, CacheBackend, StoredEntry
from salescast.cache.backends.memory import MemoryBackend, MemoryEntry
from salescast.cache.backends.redis import RedisBackend

__all__ = [
    "AsyncCacheBackend",
    "CacheBackend",
    "MemoryBackend",
    "MemoryEntry",
    "RedisBackend",
    "StoredEntry",
]
