"""TieredCache: L1 (in-process) in front of L2 (Redis), the public face of the cache.

The class wires the parts and offers the public operations, sync and
asyncio; the control flow behind them (lookups, fills, the lease, tag
generations, writes) is written once in ``_async/flow.py`` and generated for
the sync face (``_sync/flow.py``). Counted tier bookkeeping is in
``tier_access.py``, known tag generations in ``tags.py``, entry-key
resolution in ``entry_keys.py``.

Each public operation stands here twice, sync and asyncio (``get`` /
``aget``, ``get_or_compute`` / ``aget_or_compute``, ...), with the same
signature and docstring pattern: each is a one-line call into its face of
the flow, and the pairs are kept side by side (past 400 lines) so the API
reads as one reference rather than being split by face.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from salescast.cache._async.flow import AsyncFlow
from salescast.cache._sync.flow import SyncFlow
from salescast.cache.backends.memory import MemoryBackend
from salescast.cache.backends.redis import RedisBackend
from salescast.cache.background import TaskRunner, ThreadRunner
from salescast.cache.breaker import CircuitBreaker
from salescast.cache.codecs import CodecRegistry
from salescast.cache.entry_keys import EntryKeys
from salescast.cache.errors import BackendUnavailableError
from salescast.cache.frames import FrameSerializer
from salescast.cache.guard import BreakerGuard, Unavailable
from salescast.cache.health import CacheHealth, CacheStats
from salescast.cache.invalidation import InvalidationSubscriber
from salescast.cache.keys import KeyBuilder, Version, hash_arguments
from salescast.cache.lease import OwedLeases
from salescast.cache.lifetime import DEFAULT_MAX_LIFETIME, DEFAULT_STALE_WINDOW, LifetimePolicy
from salescast.cache.lookup import MISSING, CacheSource, Lookup, last_cache_source
from salescast.cache.shared_tier import SharedTier
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
    ``salescast.cache.keys`` for the layout. TTLs are seconds. An
    ``IdleTTL`` is an idle lifetime for keys that name every version they
    depend on: a hit renews it, ``max_lifetime`` bounds it, hot entries are
    refreshed in the background before or (for ``stale_window`` seconds)
    after that bound (``salescast.cache.lifetime``).

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
    let one caller's request be the probe), ``clock``/``sleep``/``asleep``
    (injectable for tests; the lease polls with ``sleep`` on the sync face and
    ``asleep`` on the asyncio one), ``wall_clock`` (Unix seconds: the age of
    entries, which every process must judge alike).

    Thread-safe; the asyncio methods may be used from any event loop (one
    Redis client per loop; close it with ``aclose`` in that loop).
    """

    def __init__(
        self,
        *,
        l2: SharedTier | None = None,
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
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
        stale_window: float = DEFAULT_STALE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.keys = KeyBuilder(prefix)
        self.serializer = FrameSerializer(registry=registry, secret=secret, wall_clock=wall_clock)
        self.lifetime = LifetimePolicy(max_lifetime=max_lifetime, stale_window=stale_window)
        self.background = ThreadRunner()
        """Refreshes for the sync face, and every Redis TTL renewal."""
        self.abackground = TaskRunner()
        """Refreshes for the asyncio face."""
        self.l1 = (l1 if l1 is not None else MemoryBackend()) if use_l1 else None
        self.l2 = l2
        self.breaker = breaker if breaker is not None else CircuitBreaker(name=_l2_name(l2))
        if probe_in_background and l2 is not None:
            # A frozen Redis then costs the probe's timeout to a thread, not to a request.
            self.breaker.set_probe(lambda: _probe_writable(l2))
        self.guard = BreakerGuard(self.breaker)
        self.lease_ttl = lease_ttl
        self.instance_id = secrets.token_hex(8)
        self._stats = StatsRecorder()
        self.clock = clock
        self.tags = TagBook(
            keys=self.keys,
            l1=self.l1,
            shared=l2 is not None,
            instance_id=self.instance_id,
            generation_ttl=generation_ttl,
            clock=clock,
        )
        self.io = TierAccess(
            l1=self.l1,
            serializer=self.serializer,
            stats=self._stats,
            keys=self.keys,
            on_l1_store=self.tags.remember_l1,
            lifetime=self.lifetime,
            refresh_grace=max(lease_ttl, 1.0),
            touch_l2=self._touch_l2 if l2 is not None else None,
        )
        if self.l1 is not None and l2 is not None:
            self.l1.set_renew_listener(self._touch_l2)
        entry_keys = EntryKeys(self.keys, self.tags)
        self._entry_keys = entry_keys
        # l2 is passed on its own, so mypy checks the SharedTier against both
        # faces of the L2 contract (SharedBackend, AsyncSharedBackend).
        common: dict[str, Any] = {
            "io": self.io,
            "guard": self.guard,
            "keys": self.keys,
            "entry_keys": entry_keys,
            "tags": self.tags,
            "owed_leases": OwedLeases(),
            "lease_ttl": lease_ttl,
            "lease_poll_interval": lease_poll_interval,
            "clock": clock,
        }
        self.flow = SyncFlow(l2=l2, **common, sleep=sleep, background=self.background)
        """The sync control flow (generated from ``aflow``'s source)."""
        self.aflow = AsyncFlow(l2=l2, **common, sleep=asleep, background=self.abackground)
        """The asyncio control flow."""
        # The hot path of every decorated call: the flow's own bound methods.
        self._lookup_hashed = self.flow.lookup_hashed
        self._lookup_below_l1 = self.flow.lookup_below_l1
        self.subscriber: InvalidationSubscriber | None = None
        if l2 is not None and subscribe:
            self.subscriber = self._start_subscriber(l2, ping_interval=ping_interval)

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

    def _touch_l2(self, entry_key: str, seconds: float) -> None:
        # A hit renewed a sliding entry: renew its Redis copy off the hit path
        # (one PEXPIRE per key and half idle time, through the breaker).
        l2 = self.l2
        if l2 is None:
            return
        guard = self.guard
        self.background.start(
            ("touch", entry_key), lambda: guard.call(l2.expire, entry_key, seconds)
        )

    def _start_subscriber(self, l2: SharedTier, *, ping_interval: float) -> InvalidationSubscriber:
        # Listen for other processes' invalidations in a daemon thread. A
        # subscription whose PING goes unanswered opens the breaker at once
        # (CircuitBreaker.trip): once the subscription is lost, lookups re-read
        # tag generations, and against a frozen Redis each of the first
        # failure_threshold reads would wait a socket timeout.
        subscriber = InvalidationSubscriber(
            l2.client,
            self.keys.channel,
            on_message=self.tags.on_message,
            on_resubscribe=self.tags.forget_everything,
            ping_interval=ping_interval,
            on_silence=self.breaker.trip,
        )
        self.tags.subscriber = subscriber
        subscriber.start()
        return subscriber

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
        digest = hash_arguments(key)
        return Lookup(*self._lookup_hashed(namespace, digest, compute, ttl, version, tuple(tags)))

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
        return Lookup(*self._lookup_hashed(namespace, digest, compute, ttl, version, tuple(tags)))

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
        entry_key = self._entry_keys.known(namespace, digest, version, tags)
        if entry_key is None:
            return MISSING
        value = self.io.peek_l1(namespace, entry_key)
        if value is not MISSING:
            last_cache_source.set(CacheSource.HIT_L1)
        return value

    def get(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> Lookup[Any]:
        """``(value, HIT-L1|HIT-L2)``, or ``(MISSING, MISS)`` when no tier has it."""
        return Lookup(*self.flow.get(namespace, hash_arguments(key), version, tuple(tags)))

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
        return self.flow.store(namespace, entry_key, value, ttl, tag_list)

    def delete(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> bool:
        """Remove one entry from both tiers and from every process's L1."""
        entry_key = self.entry_key(namespace, key, version=version, tags=tuple(tags))
        return self.flow.delete_key(entry_key)

    def delete_key(self, entry_key: str) -> bool:
        """Remove a full key from both tiers and tell other processes to drop it."""
        return self.flow.delete_key(entry_key)

    def entry_key(
        self, namespace: str, key: Any, *, version: Version = None, tags: tuple[str, ...] = ()
    ) -> str:
        """The full key (see ``salescast.cache.keys``) under the tags' current generations."""
        return self.flow.entry_key(namespace, hash_arguments(key), version, tuple(tags))

    def tag_generation(self, tag: str) -> int:
        """The current generation of ``tag`` (0 when never bumped)."""
        return self.flow.read_generation(tag)[0]

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
        digest = hash_arguments(key)
        found = await self.aflow.lookup_hashed(
            namespace, digest, compute, ttl, version, tuple(tags)
        )
        return Lookup(*found)

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
        found = await self.aflow.lookup_hashed(
            namespace, digest, compute, ttl, version, tuple(tags)
        )
        return Lookup(*found)

    async def aget(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> Lookup[Any]:
        """As :meth:`get`, on the asyncio Redis client."""
        return Lookup(*await self.aflow.get(namespace, hash_arguments(key), version, tuple(tags)))

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
        entry_key = await self.aflow.entry_key(namespace, hash_arguments(key), version, tag_list)
        return await self.aflow.store(namespace, entry_key, value, ttl, tag_list)

    async def adelete(
        self, namespace: str, key: Any, *, version: Version = None, tags: Iterable[str] = ()
    ) -> bool:
        """As :meth:`delete`, on the asyncio Redis client."""
        digest = hash_arguments(key)
        entry_key = await self.aflow.entry_key(namespace, digest, version, tuple(tags))
        return await self.aflow.delete_key(entry_key)

    async def ainvalidate_tag(self, tag: str) -> int:
        """As :meth:`invalidate_tag`, on the asyncio Redis client."""
        return await self.aflow.invalidate_tag(tag)

    async def aclear(self, *, namespace: str | None = None, tag: str | None = None) -> int:
        """As :meth:`clear`, on the asyncio Redis client."""
        return await self.aflow.clear(namespace=namespace, tag=tag)

    async def aclose(self) -> None:
        """Close the asyncio Redis client of the running loop, then everything else."""
        if self.l2 is not None:
            await self.l2.aclose()
        self.close()

    # -- invalidation -------------------------------------------------------

    def invalidate_tag(self, tag: str) -> int:
        """Make every entry of ``tag`` unreachable, in every process; return the new generation."""
        return self.flow.invalidate_tag(tag)

    def clear(self, *, namespace: str | None = None, tag: str | None = None) -> int:
        """Remove this cache's entries (all, of one namespace, and/or of one tag).

        Uses SCAN + UNLINK under this prefix only; other keys in the same
        Redis are never touched. Returns how many entries were removed.
        """
        return self.flow.clear(namespace=namespace, tag=tag)

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
        """Reachability now: the backend's report (``describe``, an INFO round trip per
        server) through the breaker, none while it is open.

        A server that answers but cannot take writes (a demoted master) is
        reported ``redis_writable=False`` and counted as a failure by the
        breaker: never "reachable and closed" while every write fails.
        """
        usage = self.l1.usage() if self.l1 is not None else None
        l2 = self.l2
        report = None
        latency_ms: float | None = None
        if l2 is not None:
            started = time.perf_counter()
            described = self.guard.call(l2.describe)
            if not isinstance(described, Unavailable):
                report = described
                latency_ms = (time.perf_counter() - started) * 1000
                if not report.writable:
                    # Reachable but every write fails: as strong as a run of
                    # failures, so the breaker opens now (and its probe, which
                    # checks writability too, keeps it open until that changes).
                    self.breaker.trip(f"{report.address} cannot take writes (a replica)")
        breaker = self.breaker.snapshot() if l2 is not None else None
        return CacheHealth(
            backend="redis" if l2 is not None else "memory",
            redis_url=l2.address if l2 is not None else None,
            redis_reachable=None if l2 is None else report is not None,
            redis_version=report.version if report is not None else None,
            latency_ms=latency_ms,
            breaker_state=breaker.state.value if breaker is not None else None,
            subscription=self.subscriber.state.value if self.subscriber is not None else None,
            l1_entries=usage.entries if usage is not None else 0,
            l1_bytes=usage.bytes if usage is not None else 0,
            redis_topology=l2.topology if l2 is not None else None,
            redis_writable=report.writable if report is not None else None,
            redis_nodes=report.nodes if report is not None else None,
            breaker_last_error=breaker.last_error if breaker is not None else None,
        )

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        """Block until the invalidation subscription is live (``True`` without Redis)."""
        return self.subscriber is None or self.subscriber.wait_subscribed(timeout)

    def close(self) -> None:
        """Stop the subscriber and release connections (asyncio ones: ``aclose``)."""
        self.background.close()
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


def _probe_writable(l2: SharedTier) -> None:
    """The breaker's background probe: the shared tier answers *and* takes writes.

    A PING alone would close the breaker on a server demoted to a replica,
    where every write fails (one report per probe, only while open).
    """
    report = l2.describe()
    if not report.writable:
        raise BackendUnavailableError(f"{report.address} cannot take writes (a replica)")


def _l2_name(l2: SharedTier | None) -> str:
    return f"redis {l2.address}" if l2 is not None else "redis"
