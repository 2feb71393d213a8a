"""TieredCache: L1 (in-process) in front of L2 (Redis), with the policy between them.

The class owns key building, L1 → L2 order, fill-back, writes to both tiers,
single-flight, the computation lease, fail-open and statistics; the backends
only move bytes and the serializer only frames values. Helpers live next
door: counted tier reads/writes in ``tier_access.py``, the cross-process lease
in ``lease.py``, the asyncio path in ``tiered_async.py``, tag generations and
pub/sub in ``tags.py``. What remains here (about 500 lines, past the usual
size) is the public surface and the one hot lookup path, kept in one file on
purpose: every line of an L1 hit is read here, in order, without indirection.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from salescast.cache import lease, tiered_async
from salescast.cache.backends.memory import MemoryBackend
from salescast.cache.backends.redis import RedisBackend
from salescast.cache.breaker import CircuitBreaker
from salescast.cache.codecs import CodecRegistry
from salescast.cache.frames import FrameSerializer
from salescast.cache.guard import BreakerGuard, Unavailable
from salescast.cache.health import CacheHealth, CacheStats
from salescast.cache.invalidation import InvalidationSubscriber
from salescast.cache.keys import KeyBuilder, Version, hash_arguments, version_text
from salescast.cache.lookup import MISSING, CacheSource, Lookup, last_cache_source
from salescast.cache.singleflight import AsyncSingleFlight, SingleFlight
from salescast.cache.stats import StatsRecorder
from salescast.cache.tags import TagBook
from salescast.cache.tier_access import TierAccess

T = TypeVar("T")


class TieredCache:
    """A two-tier cache; never raises because of Redis or of stored bytes.

    Reads go L1 → L2 → compute. L1 keeps decoded objects: an L1 hit returns
    the very object stored before (computed here, or decoded once from L2),
    shared with every other caller, so **never mutate a value the cache
    returns**. An L2 hit is decoded once and put into L1 with the TTL the
    entry has left in Redis, so L1 never outlives L2. Writes encode the value
    once and go to both tiers; a value that cannot be encoded goes to neither.
    Concurrent misses of one key share one computation in this process
    (single-flight) and, with Redis, across processes (a lease: the first
    process computes, the others poll L2 until the value appears, and compute
    themselves only when the lease expires). Redis failures and undecodable
    bytes are misses, counted; after ``breaker.failure_threshold``
    consecutive failures L2 is skipped without I/O until a probe succeeds.

    Keys: ``key`` arguments are any values ``hash_arguments`` accepts; see
    ``salescast.cache.keys`` for the layout. TTLs are seconds.

    Parameters: ``l2`` (``None``: in-process only), ``l1``/``use_l1``,
    ``prefix`` (every key and the pub/sub channel start with it), ``secret``
    (HMAC-sign every value), ``registry`` (codecs; default: the process-wide
    one), ``breaker`` (default: 3 failures, 2 s pause), ``lease_ttl`` (s; 0
    disables the cross-process lease), ``lease_poll_interval`` (s),
    ``subscribe`` (listen for other processes' invalidations),
    ``generation_ttl`` (s a tag generation is trusted without a live
    subscription), ``ping_interval`` (s between subscription health PINGs),
    ``probe_in_background`` (default: after the breaker's pause, or at once
    after a timeout, probe Redis with a PING on a thread of its own; ``False``:
    let one caller's request be the probe), ``clock``/``sleep``
    (injectable for tests).

    Thread-safe; the asyncio methods may be used from any event loop (one
    Redis client per loop; close it with ``aclose`` in that loop).
    """

    def __init__(
        self,
        *,
        l2: RedisBackend | None = None,
        l1: MemoryBackend | None = None,
        use_l1: bool = True,
        prefix: str = "salescast",
        secret: bytes | str | None = None,
        registry: CodecRegistry | None = None,
        breaker: CircuitBreaker | None = None,
        lease_ttl: float = 10.0,
        lease_poll_interval: float = 0.02,
        subscribe: bool = True,
        generation_ttl: float = 1.0,
        ping_interval: float = 1.0,
        probe_in_background: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.keys = KeyBuilder(prefix)
        self.serializer = FrameSerializer(registry=registry, secret=secret)
        self.l1 = (l1 if l1 is not None else MemoryBackend()) if use_l1 else None
        self.l2 = l2
        # Every hit is a GET: hits read Redis before single-flight (see _lookup_below_l1).
        self._l2_only = self.l1 is None and l2 is not None
        self.breaker = breaker if breaker is not None else CircuitBreaker(name=_l2_name(l2))
        if probe_in_background and l2 is not None:
            # A frozen Redis then costs the probe's timeout to a thread, not to a request.
            self.breaker.set_probe(l2.ping)
        self.guard = BreakerGuard(self.breaker)
        self.lease_ttl = lease_ttl
        self.lease_poll_interval = lease_poll_interval
        self.instance_id = secrets.token_hex(8)
        self._stats = StatsRecorder()
        self.clock = clock
        self.sleep = sleep
        self._flight = SingleFlight()
        self._entry_keys: dict[tuple[str, str, str | None, tuple[str, ...]], tuple[str, int]] = {}
        self.aflight = AsyncSingleFlight()
        self.subscriber: InvalidationSubscriber | None = None
        self.tags = TagBook(self, generation_ttl=generation_ttl)
        self.io = TierAccess(
            l1=self.l1,
            l2=l2,
            guard=self.guard,
            serializer=self.serializer,
            stats=self._stats,
            keys=self.keys,
            on_l1_store=self.tags.remember_l1,
        )
        if l2 is not None and subscribe:
            self.subscriber = self.tags.start_subscriber(l2, ping_interval=ping_interval)

    @classmethod
    def from_url(
        cls,
        url: str | None,
        *,
        prefix: str = "salescast",
        socket_timeout: float = 0.25,
        socket_connect_timeout: float = 0.25,
        max_connections: int = 50,
        l1_max_bytes: int = 64 * 1024 * 1024,
        l1_max_entries: int = 10_000,
        **options: Any,
    ) -> TieredCache:
        """L1 + Redis at ``url`` (``redis://``, ``rediss://``); ``None``/``""``: L1 only."""
        l2 = None
        if url:
            l2 = RedisBackend(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
                max_connections=max_connections,
            )
        l1 = MemoryBackend(max_bytes=l1_max_bytes, max_entries=l1_max_entries)
        return cls(l2=l2, l1=l1, prefix=prefix, **options)

    # -- lookups ------------------------------------------------------------

    def get_or_compute(
        self,
        namespace: str,
        key: Any,
        compute: Callable[[], T],
        *,
        ttl: float | None,
        version: Version = None,
        tags: Iterable[str] = (),
    ) -> Lookup[T]:
        """The cached value of ``key``, or ``compute()``'s result, stored for ``ttl`` s.

        Returns ``(value, source)`` and sets ``last_cache_source``. Exceptions
        of ``compute`` reach the caller (and every caller sharing the run).
        The value is shared, not copied: an L1 hit returns the very object
        that was computed (or decoded from L2) before, to every caller, so
        callers must treat it as read-only.
        """
        return self.get_or_compute_hashed(
            namespace, hash_arguments(key), compute, ttl=ttl, version=version, tags=tags
        )

    def get_or_compute_hashed(
        self,
        namespace: str,
        digest: str,
        compute: Callable[[], T],
        *,
        ttl: float | None,
        version: Version = None,
        tags: Iterable[str] = (),
    ) -> Lookup[T]:
        """As :meth:`get_or_compute` for ``digest = hash_arguments(key)``, already computed.

        For callers that memoize the digest of their arguments (the
        decorators do); the entry key is the same as ``get_or_compute``'s.
        """
        value, source = self._lookup_hashed(namespace, digest, compute, ttl, version, tuple(tags))
        return Lookup(value, source)

    def _lookup_hashed(
        self,
        namespace: str,
        digest: str,
        compute: Callable[[], T],
        ttl: float | None,
        version: Version,
        tags: tuple[str, ...],
    ) -> tuple[T, CacheSource]:
        # The hot path of every decorated call: positional arguments and a
        # plain tuple, since building a Lookup costs as much as the L1 read.
        entry_key, redis_failed = self._resolve_digest(namespace, digest, version, tags)
        return self._lookup_key(namespace, entry_key, compute, ttl, tags, redis_failed)

    def _lookup_key(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], T],
        ttl: float | None,
        tags: tuple[str, ...],
        redis_failed: bool,
    ) -> tuple[T, CacheSource]:
        # L1, then L2 and the computation, for a full key.
        value = self.io.read_l1(namespace, entry_key)
        if value is not MISSING:
            last_cache_source.set(HIT_L1)
            return value, HIT_L1
        return self._lookup_below_l1(namespace, entry_key, compute, ttl, tags, redis_failed)

    def _lookup_below_l1(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], T],
        ttl: float | None,
        tags: tuple[str, ...],
        redis_failed: bool,
    ) -> tuple[T, CacheSource]:
        # L2 and the computation under single-flight, once L1 has missed (the
        # decorators read L1 themselves and come straight here).
        if self._l2_only and not redis_failed:
            # Without L1 every hit is a GET anyway: hits skip single-flight,
            # which only spares concurrent misses a computation each.
            value = self.io.read_l2_hit(namespace, entry_key)
            if isinstance(value, Unavailable):
                redis_failed = True  # counted; no more Redis I/O in this call
            elif value is not MISSING:
                last_cache_source.set(HIT_L2)
                return value, HIT_L2
        (value, source), _ = self._flight.do(
            entry_key,
            lambda: self._fill(namespace, entry_key, compute, ttl, tags, redis_failed=redis_failed),
        )
        last_cache_source.set(source)
        return value, source

    def peek(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> Any:
        """The value L1 holds for ``key``, or ``MISSING``; never any I/O, never blocks.

        For callers on an event loop that want the hit without leaving it
        and take a thread for everything else. ``MISSING`` also when the key
        itself would need I/O (a tag generation not known in this process).
        An absent entry is not counted as a miss (the full lookup that
        follows counts it); a hit is counted and sets ``last_cache_source``.
        """
        return self.peek_hashed(namespace, hash_arguments(key), version=version, tags=tuple(tags))

    def peek_hashed(
        self, namespace: str, digest: str, *, version: Version = None, tags: tuple[str, ...] = ()
    ) -> Any:
        """As :meth:`peek` for ``digest = hash_arguments(key)``."""
        entry_key = self._known_entry_key(namespace, digest, version, tags)
        if entry_key is None:
            return MISSING
        value = self.io.peek_l1(namespace, entry_key)
        if value is not MISSING:
            last_cache_source.set(HIT_L1)
        return value

    def get(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> Lookup[Any]:
        """``(value, HIT-L1|HIT-L2)``, or ``(MISSING, MISS)`` when no tier has it."""
        tag_list = tuple(tags)
        entry_key, redis_failed = self._resolve_key(namespace, key, version, tag_list)
        value = self.io.read_l1(namespace, entry_key)
        if value is not MISSING:
            return _found(value, CacheSource.HIT_L1)
        if not redis_failed:
            value = self.io.read_l2(namespace, entry_key, tag_list)
            if not isinstance(value, Unavailable) and value is not MISSING:
                return _found(value, CacheSource.HIT_L2)
        self._stats.miss(namespace)
        return _found(MISSING, CacheSource.MISS)

    def set(
        self,
        namespace: str,
        key: Any,
        value: Any,
        *,
        ttl: float | None,
        version: Version = None,
        tags: Iterable[str] = (),
    ) -> bool:
        """Store in both tiers; ``False`` when the value could not be encoded."""
        tag_list = tuple(tags)
        entry_key = self.entry_key(namespace, key, version=version, tags=tag_list)
        return self.io.store(namespace, entry_key, value, ttl, tag_list)

    def delete(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> bool:
        """Remove one entry from both tiers and from every process's L1."""
        entry_key = self.entry_key(namespace, key, version=version, tags=tuple(tags))
        return self.delete_key(entry_key)

    def entry_key(
        self, namespace: str, key: Any, *, version: Version = None, tags: tuple[str, ...] = ()
    ) -> str:
        """The full key (see ``salescast.cache.keys``) under the tags' current generations."""
        return self._resolve_key(namespace, key, version, tags)[0]

    def _resolve_key(
        self, namespace: str, key: Any, version: Version, tags: tuple[str, ...]
    ) -> tuple[str, bool]:
        return self._resolve_digest(namespace, hash_arguments(key), version, tags)

    def _resolve_digest(
        self, namespace: str, digest: str, version: Version, tags: tuple[str, ...]
    ) -> tuple[str, bool]:
        # Also says whether reading a tag generation from Redis just failed.
        entry_key = self._known_entry_key(namespace, digest, version, tags)
        if entry_key is not None:
            return entry_key, False
        redis_failed = False
        generations = []
        for tag in tags:
            generation, failed = self.tags.read_generation(tag)
            generations.append(generation)
            redis_failed = redis_failed or failed
        text = None if version is None else version_text(version)
        entry_key = self.keys.entry_key(
            namespace, digest, version=text, tags=tags, generations=generations
        )
        return entry_key, redis_failed

    def _known_entry_key(
        self, namespace: str, digest: str, version: Version, tags: tuple[str, ...]
    ) -> str | None:
        # The key when it needs no I/O: untagged, or every tag's generation
        # known and trusted (see TagBook.trusting); None otherwise. Shared by
        # the sync and asyncio paths.
        text = None if version is None else version_text(version)
        if not tags:
            return self.keys.entry_key(namespace, digest, version=text)
        book = self.tags
        if not book.trusting():
            return None
        # Known generations are the answer until one changes, so the key
        # built from them is remembered with the change count it saw.
        changes = book.changes
        memo = (namespace, digest, text, tags)
        remembered = self._entry_keys.get(memo)
        if remembered is not None and remembered[1] == changes:
            return remembered[0]
        generations = book.known_generations(tags)
        if generations is None:
            return None
        entry_key = self.keys.entry_key(
            namespace, digest, version=text, tags=tags, generations=generations
        )
        if len(self._entry_keys) >= _ENTRY_KEY_MEMO_LIMIT:
            self._entry_keys.clear()
        self._entry_keys[memo] = (entry_key, changes)
        return entry_key

    def delete_key(self, entry_key: str) -> bool:
        """Remove a full key from both tiers and tell other processes to drop it."""
        removed = self.l1.delete(entry_key) if self.l1 is not None else False
        if self.l2 is not None:
            l2 = self.l2
            result = self.guard.call(lambda: l2.delete(entry_key))
            removed = removed or result is True
            self.tags.publish({"op": "delete", "key": entry_key})
        return removed

    # -- asyncio --------------------------------------------------------------

    async def aget_or_compute(
        self,
        namespace: str,
        key: Any,
        compute: Callable[[], Awaitable[T]],
        *,
        ttl: float | None,
        version: Version = None,
        tags: Iterable[str] = (),
    ) -> Lookup[T]:
        """As :meth:`get_or_compute` for a coroutine function, on the asyncio Redis client."""
        return await tiered_async.aget_or_compute(
            self, namespace, hash_arguments(key), compute, ttl=ttl, version=version, tags=tags
        )

    async def aget_or_compute_hashed(
        self,
        namespace: str,
        digest: str,
        compute: Callable[[], Awaitable[T]],
        *,
        ttl: float | None,
        version: Version = None,
        tags: Iterable[str] = (),
    ) -> Lookup[T]:
        """As :meth:`get_or_compute_hashed`, for a coroutine function."""
        return await tiered_async.aget_or_compute(
            self, namespace, digest, compute, ttl=ttl, version=version, tags=tags
        )

    async def aget(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> Lookup[Any]:
        """As :meth:`get`, on the asyncio Redis client."""
        return await tiered_async.aget(self, namespace, key, version=version, tags=tags)

    async def aset(
        self,
        namespace: str,
        key: Any,
        value: Any,
        *,
        ttl: float | None,
        version: Version = None,
        tags: Iterable[str] = (),
    ) -> bool:
        """As :meth:`set`, on the asyncio Redis client."""
        tag_list = tuple(tags)
        entry_key = await tiered_async.aentry_key(
            self, namespace, key, version=version, tags=tag_list
        )
        return await tiered_async.astore(self, namespace, entry_key, value, ttl, tag_list)

    async def adelete(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> bool:
        """As :meth:`delete`, on the asyncio Redis client."""
        tag_list = tuple(tags)
        entry_key = await tiered_async.aentry_key(
            self, namespace, key, version=version, tags=tag_list
        )
        return await tiered_async.adelete_key(self, entry_key)

    async def aclose(self) -> None:
        """Close the asyncio Redis client of the running loop, then everything else."""
        if self.l2 is not None:
            await self.l2.aclose()
        self.close()

    # -- invalidation -------------------------------------------------------

    def invalidate_tag(self, tag: str) -> int:
        """Make every entry of ``tag`` unreachable, in every process; return the new generation."""
        return self.tags.invalidate(tag)

    def clear(self, *, namespace: str | None = None, tag: str | None = None) -> int:
        """Remove this cache's entries (all, of one namespace, and/or of one tag).

        Uses SCAN + UNLINK under this prefix only; other keys in the same
        Redis are never touched. Returns how many entries were removed.
        """
        return self.tags.clear(namespace=namespace, tag=tag)

    # -- reporting ----------------------------------------------------------

    def stats(self) -> CacheStats:
        """Counters per namespace and tier, L1 size, breaker and subscription state."""
        return CacheStats(
            namespaces=self._stats.snapshot(),
            l1=self.l1.usage() if self.l1 is not None else None,
            breaker=self.breaker.snapshot() if self.l2 is not None else None,
            subscription=self.subscriber.state.value if self.subscriber is not None else None,
        )

    def health(self) -> CacheHealth:
        """Reachability now: one INFO round trip through the breaker (none while it is open)."""
        reachable: bool | None = None
        version: str | None = None
        latency_ms: float | None = None
        if self.l2 is not None:
            l2 = self.l2
            started = time.perf_counter()
            info = self.guard.call(l2.server_info)
            if isinstance(info, Unavailable):
                reachable = False
            else:
                reachable = True
                latency_ms = (time.perf_counter() - started) * 1000
                version = str(info.get("redis_version"))
        usage = self.l1.usage() if self.l1 is not None else None
        return CacheHealth(
            backend="redis" if self.l2 is not None else "memory",
            redis_url=self.l2.address if self.l2 is not None else None,
            redis_reachable=reachable,
            redis_version=version,
            latency_ms=latency_ms,
            breaker_state=self.breaker.state.value if self.l2 is not None else None,
            subscription=self.subscriber.state.value if self.subscriber is not None else None,
            l1_entries=usage.entries if usage is not None else 0,
            l1_bytes=usage.bytes if usage is not None else 0,
        )

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        """Block until the invalidation subscription is live (``True`` without Redis)."""
        return self.subscriber is None or self.subscriber.wait_subscribed(timeout)

    def close(self) -> None:
        """Stop the subscriber and release connections (asyncio ones: ``aclose``)."""
        if self.subscriber is not None:
            self.subscriber.stop()
        if self.l2 is not None:
            self.l2.close()
        if self.l1 is not None:
            self.l1.close()

    def __enter__(self) -> TieredCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals shared with the asyncio mixin ----------------------------

    def _fill(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], T],
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        redis_failed: bool = False,
    ) -> tuple[Any, CacheSource]:
        value = MISSING if redis_failed else self.io.read_l2(namespace, entry_key, tags)
        if not isinstance(value, Unavailable) and value is not MISSING:
            return value, CacheSource.HIT_L2
        self._stats.miss(namespace)
        if redis_failed or isinstance(value, Unavailable):
            # Redis just failed (or the breaker is open): no lease, no L2
            # write in this call, so one call pays at most one timeout.
            value = self.io.compute_and_store(namespace, entry_key, compute, ttl, tags, l2=False)
            return value, MISS
        if self.l2 is None or self.lease_ttl <= 0:
            return self.io.compute_and_store(namespace, entry_key, compute, ttl, tags), MISS
        return lease.fill_under_lease(self, namespace, entry_key, compute, ttl, tags)


MISS = CacheSource.MISS
HIT_L1 = CacheSource.HIT_L1
HIT_L2 = CacheSource.HIT_L2
# Tagged entry keys remembered (see _resolve_digest); emptied when full.
_ENTRY_KEY_MEMO_LIMIT = 16_384


def _found(value: T, source: CacheSource) -> Lookup[T]:
    last_cache_source.set(source)
    return Lookup(value, source)


def _l2_name(l2: RedisBackend | None) -> str:
    return f"redis {l2.address}" if l2 is not None else "redis"
