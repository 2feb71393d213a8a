"""Counted tier bookkeeping without network I/O: L1 reads, encoding, decoding, counts.

The control flow (``_async/flow.py``, both faces) does the L2 I/O and hands
its results here. Counted, never raising. L1 keeps the decoded object with the size of its
frame, so an L1 hit is a dict lookup: no decode, no copy (the object is
shared by every reader; see docs/decisions/0004-l1-keeps-decoded-objects.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any

from salescast.cache.backends.base import StoredEntry
from salescast.cache.backends.memory import MemoryBackend
from salescast.cache.errors import DecodeError
from salescast.cache.frames import FrameSerializer
from salescast.cache.guard import FAILED, Unavailable
from salescast.cache.keys import KeyBuilder
from salescast.cache.lookup import MISSING
from salescast.cache.stats import StatsRecorder, Tier

# L1 lookups whose count has any of these bits set are not timed: one in 16 is.
_L1_UNTIMED_MASK = 15
L1StoreListener = Callable[[str, tuple[str, ...]], None]

logger = logging.getLogger("salescast.cache")


class TierAccess:
    """One place that turns tier operations into values, misses and counts.

    Reads return the value, ``MISSING`` (absent, or undecodable in L2: a
    counted error), or, for L2, the ``SKIPPED``/``FAILED`` marker of the
    breaker guard so the caller can avoid further Redis work in the same
    call. Every write encodes the value once: the frame goes to L2 and its
    length is what L1 charges for the object it keeps. A value that cannot
    be encoded is stored in neither tier (counted). An L2 hit is decoded
    once and that object goes into L1 with the TTL the entry has left.
    """

    def __init__(
        self,
        *,
        l1: MemoryBackend | None,
        serializer: FrameSerializer,
        stats: StatsRecorder,
        keys: KeyBuilder,
        on_l1_store: L1StoreListener,
    ) -> None:
        self.l1 = l1
        self.serializer = serializer
        self.stats = stats
        self.keys = keys
        self._on_l1_store = on_l1_store
        self._unencodable_logged: set[str] = set()
        self._l1_reads = 0
        if l1 is not None:
            l1.set_eviction_listener(self.on_l1_evict)

    def read_l1(self, namespace: str, entry_key: str) -> Any:
        """The object L1 holds for ``entry_key`` (shared: never mutate it), or ``MISSING``.

        Counts are exact; one lookup in 16 is timed for the latency
        percentiles (two clock reads would cost a good part of a hit).
        """
        l1 = self.l1
        if l1 is None:
            return MISSING
        reads = self._l1_reads
        self._l1_reads = reads + 1  # racy on purpose: it only picks which lookups to time
        if reads & _L1_UNTIMED_MASK:
            entry = l1.get_object(entry_key)
            if entry is not None:
                self.stats.l1_hit(namespace, entry.nbytes, None)
                return entry.value
            self.stats.tier_miss(namespace, Tier.L1, seconds=None)
            return MISSING
        started = perf_counter()
        entry = l1.get_object(entry_key)
        seconds = perf_counter() - started
        if entry is None:
            self.stats.tier_miss(namespace, Tier.L1, seconds=seconds)
            return MISSING
        self.stats.l1_hit(namespace, entry.nbytes, seconds)
        return entry.value

    def peek_l1(self, namespace: str, entry_key: str) -> Any:
        """As :meth:`read_l1`, but an absent entry is not counted: the caller
        goes on to a full lookup, which counts the miss once."""
        l1 = self.l1
        entry = l1.get_object(entry_key) if l1 is not None else None
        if entry is None:
            return MISSING
        self.stats.l1_hit(namespace, entry.nbytes, None)
        return entry.value

    def after_l2_hit_read(
        self, namespace: str, entry_key: str, data: bytes | Unavailable | None, started: float
    ) -> Any:
        """Count and decode what the hit path of a cache without L1 read (one GET).

        Returns the value, ``MISSING`` or the ``SKIPPED``/``FAILED`` marker,
        but counts only what ends the lookup: a hit, or Redis unavailable
        (the caller then does no more Redis I/O in this call). An absent or
        undecodable entry comes back as an uncounted ``MISSING``: the caller
        reads again under single-flight, where a concurrent caller's value
        may have arrived, and that read counts it.
        """
        seconds = perf_counter() - started
        if data is None:
            return MISSING
        if isinstance(data, Unavailable):
            self.count_unavailable(namespace, data)
            return data
        try:
            value = self.serializer.loads(entry_key, data)
        except DecodeError:
            return MISSING  # uncounted: read again under single-flight, counted there
        self.stats.l2_hit(namespace, len(data), seconds)
        return value

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
        """Count and decode what an L2 read returned; a hit is put into L1 with
        the TTL it has left. The value, ``MISSING`` or the guard's marker."""
        seconds = perf_counter() - started
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
        self.stats.l2_hit(namespace, len(entry.value), seconds)
        self.store_l1(namespace, entry_key, value, len(entry.value), entry.ttl, tags)
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

    def after_l2_write(self, namespace: str, result: object, nbytes: int) -> None:
        if isinstance(result, Unavailable):
            self.count_unavailable(namespace, result)
        else:
            self.stats.stored(namespace, Tier.L2, nbytes=nbytes)

    def store_l1(
        self,
        namespace: str,
        entry_key: str,
        value: Any,
        nbytes: int,
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> None:
        """Keep ``value`` itself in L1, charged ``nbytes`` (the length of its frame)."""
        if self.l1 is None or (ttl is not None and ttl <= 0):
            return
        self.l1.set_object(entry_key, value, nbytes=nbytes, ttl=ttl)
        self.stats.stored(namespace, Tier.L1, nbytes=nbytes)
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


def untimed(data: bytes | None) -> StoredEntry | None:
    """A GET's reply as a backend entry whose remaining TTL was not asked for."""
    return None if data is None else StoredEntry(data, None)
