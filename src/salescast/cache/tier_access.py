"""Reads and writes of framed values in L1 and L2 for TieredCache: counted, never raising."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from salescast.cache.backends.memory import MemoryBackend
from salescast.cache.backends.redis import RedisBackend
from salescast.cache.errors import DecodeError
from salescast.cache.frames import FrameSerializer
from salescast.cache.guard import FAILED, BreakerGuard, Unavailable
from salescast.cache.keys import KeyBuilder
from salescast.cache.lookup import MISSING
from salescast.cache.stats import StatsRecorder, Tier

T = TypeVar("T")
L1StoreListener = Callable[[str, tuple[str, ...]], None]

logger = logging.getLogger("salescast.cache")


class TierAccess:
    """One place that turns tier operations into values, misses and counts.

    Reads return the value, ``MISSING`` (absent or undecodable: a counted
    error), or, for L2, the ``SKIPPED``/``FAILED`` marker of the breaker
    guard so the caller can avoid further Redis work in the same call.
    Writes of unencodable values are skipped and counted. L2 hits are copied
    into L1 with the TTL they have left.
    """

    def __init__(
        self,
        *,
        l1: MemoryBackend | None,
        l2: RedisBackend | None,
        guard: BreakerGuard,
        serializer: FrameSerializer,
        stats: StatsRecorder,
        keys: KeyBuilder,
        on_l1_store: L1StoreListener,
    ) -> None:
        self.l1 = l1
        self.l2 = l2
        self.guard = guard
        self.serializer = serializer
        self.stats = stats
        self.keys = keys
        self._on_l1_store = on_l1_store
        self._unencodable_logged: set[str] = set()
        if l1 is not None:
            l1.set_eviction_listener(self.on_l1_evict)

    def compute_and_store(
        self,
        namespace: str,
        entry_key: str,
        compute: Callable[[], T],
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        l2: bool = True,
    ) -> T:
        value = compute()
        self.stats.computed(namespace)
        self.store(namespace, entry_key, value, ttl, tags, l2=l2)
        return value

    def read_l1(self, namespace: str, entry_key: str) -> Any:
        if self.l1 is None:
            return MISSING
        started = time.perf_counter()
        entry = self.l1.get(entry_key)
        if entry is None:
            self.stats.tier_miss(namespace, Tier.L1, seconds=time.perf_counter() - started)
            return MISSING
        value = self.decode(namespace, Tier.L1, entry_key, entry.value)
        if value is MISSING:
            self.l1.delete(entry_key)
            return MISSING
        seconds = time.perf_counter() - started
        self.stats.hit(namespace, Tier.L1, nbytes=len(entry.value), seconds=seconds)
        return value

    def read_l2(
        self, namespace: str, entry_key: str, tags: tuple[str, ...], *, count: bool = True
    ) -> Any:
        """The value, ``MISSING`` (not there or undecodable), or ``SKIPPED``/``FAILED``."""
        if self.l2 is None:
            return MISSING
        l2 = self.l2
        started = time.perf_counter()
        entry = self.guard.call(lambda: l2.get(entry_key))
        return self.after_l2_read(namespace, entry_key, tags, entry, started, count=count)

    def after_l2_read(
        self,
        namespace: str,
        entry_key: str,
        tags: tuple[str, ...],
        entry: Any,
        started: float,
        *,
        count: bool,
    ) -> Any:
        seconds = time.perf_counter() - started
        if isinstance(entry, Unavailable):
            if count:
                self.count_unavailable(namespace, entry)
            return entry
        if entry is None:
            if count:
                self.stats.tier_miss(namespace, Tier.L2, seconds=seconds)
            return MISSING
        value = self.decode(namespace, Tier.L2, entry_key, entry.value, count=count)
        if value is MISSING:
            return MISSING
        self.stats.hit(namespace, Tier.L2, nbytes=len(entry.value), seconds=seconds)
        self.store_l1(namespace, entry_key, entry.value, entry.ttl, tags)
        return value

    def decode(
        self, namespace: str, tier: Tier, entry_key: str, data: bytes, *, count: bool = True
    ) -> Any:
        try:
            return self.serializer.loads(entry_key, data)
        except DecodeError as exc:
            if count:  # lease re-reads of the same bytes are not new errors
                self.stats.tier_error(namespace, tier)
            logger.debug("undecodable %s entry %s: %s", tier.value, entry_key, exc)
            return MISSING

    def encode(self, namespace: str, entry_key: str, value: Any) -> bytes | None:
        try:
            return self.serializer.dumps(entry_key, value)
        except (TypeError, ValueError) as exc:
            self.stats.error(namespace)
            if namespace not in self._unencodable_logged:
                self._unencodable_logged.add(namespace)
                logger.warning("namespace %s: a value is not cacheable (%s)", namespace, exc)
            return None

    def store(
        self,
        namespace: str,
        entry_key: str,
        value: Any,
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        l2: bool = True,
    ) -> bool:
        data = self.encode(namespace, entry_key, value)
        if data is None:
            return False
        self.store_l1(namespace, entry_key, data, ttl, tags)
        if self.l2 is not None and l2:
            backend = self.l2
            result = self.guard.call(lambda: backend.set(entry_key, data, ttl))
            self.after_l2_write(namespace, result, len(data))
        return True

    def after_l2_write(self, namespace: str, result: object, nbytes: int) -> None:
        if isinstance(result, Unavailable):
            self.count_unavailable(namespace, result)
        else:
            self.stats.stored(namespace, Tier.L2, nbytes=nbytes)

    def store_l1(
        self,
        namespace: str,
        entry_key: str,
        data: bytes,
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> None:
        if self.l1 is None or (ttl is not None and ttl <= 0):
            return
        self.l1.set(entry_key, data, ttl)
        self.stats.stored(namespace, Tier.L1, nbytes=len(data))
        self._on_l1_store(entry_key, tags)

    def count_unavailable(self, namespace: str, marker: Unavailable) -> None:
        """Count an L2 operation that failed (error) or was skipped by the breaker."""
        if marker is FAILED:
            self.stats.tier_error(namespace, Tier.L2)
        else:
            self.stats.tier_skipped(namespace, Tier.L2)

    def on_l1_evict(self, entry_key: str, _size: int) -> None:
        """Count an L1 capacity eviction under its namespace."""
        namespace = self.keys.namespace_of(entry_key)
        if namespace is not None:
            self.stats.evicted(namespace, Tier.L1)
