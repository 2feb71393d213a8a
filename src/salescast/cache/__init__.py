"""salescast.cache: a two-tier (in-process + Redis) cache, usable on its own.

See docs/cache.md for the key layout, timeouts, breaker, lease and what
counts as a miss.

Reading the code: the I/O is written once, as asyncio, in ``_async/`` and
generated for sync into ``_sync/`` (decision 0009); each generated file
repeats its source, as its header says. The parts take their collaborators
as keyword-only constructor parameters kept as attributes (``TagBook``,
``TierAccess``, ``InvalidationSubscriber``), so their ``__init__`` bodies
look alike: a convention, not copied logic.
"""

from salescast.cache.backends import (
    AsyncCacheBackend,
    CacheBackend,
    MemoryBackend,
    MemoryEntry,
    RedisBackend,
    StoredEntry,
)
from salescast.cache.breaker import BreakerSnapshot, BreakerState, CircuitBreaker
from salescast.cache.codecs import (
    FIRST_USER_CODEC_ID,
    BytesCodec,
    Codec,
    CodecRegistry,
    NdarrayCodec,
    default_registry,
    register_codec,
)
from salescast.cache.decorators import CachedFunction, cached
from salescast.cache.default_cache import configure, get_default_cache
from salescast.cache.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    CacheError,
    DecodeError,
    KeyArgumentError,
    PoolExhaustedError,
)
from salescast.cache.frames import FrameSerializer
from salescast.cache.health import CacheHealth, CacheStats
from salescast.cache.json_codec import JsonCodec
from salescast.cache.keys import KeyBuilder, hash_arguments
from salescast.cache.lifetime import IdleTTL
from salescast.cache.lookup import MISSING, CacheSource, Lookup, last_cache_source
from salescast.cache.presets import cached_model, cached_prediction
from salescast.cache.redis_cache import ModelCache, RedisCache, product_tag
from salescast.cache.stats import LatencySummary, NamespaceStats, TierStats
from salescast.cache.tiered import TieredCache

__all__ = [
    "FIRST_USER_CODEC_ID",
    "MISSING",
    "AsyncCacheBackend",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "BreakerSnapshot",
    "BreakerState",
    "BytesCodec",
    "CacheBackend",
    "CacheError",
    "CacheHealth",
    "CacheSource",
    "CacheStats",
    "CachedFunction",
    "CircuitBreaker",
    "Codec",
    "CodecRegistry",
    "DecodeError",
    "FrameSerializer",
    "IdleTTL",
    "JsonCodec",
    "KeyArgumentError",
    "KeyBuilder",
    "LatencySummary",
    "Lookup",
    "MemoryBackend",
    "MemoryEntry",
    "ModelCache",
    "NamespaceStats",
    "NdarrayCodec",
    "PoolExhaustedError",
    "RedisBackend",
    "RedisCache",
    "StoredEntry",
    "TierStats",
    "TieredCache",
    "cached",
    "cached_model",
    "cached_prediction",
    "configure",
    "default_registry",
    "get_default_cache",
    "hash_arguments",
    "last_cache_source",
    "product_tag",
    "register_codec",
]
