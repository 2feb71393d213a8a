"""Counters and latency histograms per namespace and tier, read as typed snapshots.

The recorder's methods (one per event: hit, miss, error, eviction, ...) and
the snapshots' constructors (every counter named, like the breaker's) read
alike by design: one short locked increment, or one field per counter.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Tier(StrEnum):
    """Where a cache operation happened."""

    L1 = "l1"
    L2 = "l2"


# Four buckets per doubling from 1 microsecond: 128 buckets reach ~4.6 hours,
# with at most ~19 % error on a percentile, in a fixed 1 KiB per histogram.
_BUCKETS_PER_DOUBLING = 4
_BUCKET_COUNT = 128
_SMALLEST = 1e-6
_log2 = math.log2


class LatencyHistogram:
    """Fixed-size log-bucket histogram of durations (seconds). Not locked: callers lock.

    ``total`` counts recorded durations (the percentiles' sample);
    ``untimed`` counts operations that happened without being timed (L1
    lookups are timed one in 16: timing one would cost a good part of it).
    """

    __slots__ = ("counts", "total", "untimed")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKET_COUNT
        self.total = 0
        self.untimed = 0

    def record(self, seconds: float) -> None:
        """Count one duration."""
        if seconds <= _SMALLEST:
            index = 0
        else:
            index = int(_log2(seconds / _SMALLEST) * _BUCKETS_PER_DOUBLING) + 1
            if index >= _BUCKET_COUNT:
                index = _BUCKET_COUNT - 1
        self.counts[index] += 1
        self.total += 1

    def percentile(self, fraction: float) -> float:
        """Upper edge (seconds) of the bucket holding the ``fraction`` quantile; 0 if empty."""
        if self.total == 0:
            return 0.0
        rank = max(1, math.ceil(fraction * self.total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return float(_SMALLEST * 2 ** (index / _BUCKETS_PER_DOUBLING))
        return float(_SMALLEST * 2 ** (_BUCKET_COUNT / _BUCKETS_PER_DOUBLING))


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles of operation latency in milliseconds (bucket upper edges).

    ``count`` is the number of operations; for L1 the percentiles come from
    a sample of them (one lookup in 16 is timed), for L2 from every one.
    """

    count: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class TierStats:
    """What one tier did for one namespace.

    ``errors``: failed operations and undecodable entries; ``skipped``:
    operations not attempted because the circuit breaker was open.
    """

    hits: int = 0
    misses: int = 0
    sets: int = 0
    errors: int = 0
    skipped: int = 0
    evictions: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    latency: LatencySummary = field(default_factory=LatencySummary)


@dataclass(frozen=True, slots=True)
class NamespaceStats:
    """One namespace: each tier, and lookups that no tier could serve.

    ``misses`` counts lookups answered by neither tier; ``computations``
    counts how often the wrapped function actually ran (lower than
    ``misses`` when single-flight or the lease let callers share one run);
    ``refreshes`` counts the computations that refreshed an entry in the
    background while its value was served (they are in ``computations`` too);
    ``errors`` counts decode failures, Redis failures and unencodable values.
    """

    namespace: str
    l1: TierStats
    l2: TierStats
    misses: int
    computations: int
    errors: int
    refreshes: int = 0

    @property
    def hits(self) -> int:
        """Lookups served by either tier."""
        return self.l1.hits + self.l2.hits

    @property
    def hit_rate(self) -> float:
        """Share of lookups served from a tier (0.0 before the first lookup)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class _TierCounters:
    __slots__ = (
        "bytes_read",
        "bytes_written",
        "errors",
        "evictions",
        "hits",
        "latency",
        "misses",
        "sets",
        "skipped",
    )

    def __init__(self) -> None:
        self.hits = self.misses = self.sets = self.errors = self.evictions = self.skipped = 0
        self.bytes_read = self.bytes_written = 0
        self.latency = LatencyHistogram()

    def snapshot(self) -> TierStats:
        latency = LatencySummary(
            count=self.latency.total + self.latency.untimed,
            p50_ms=self.latency.percentile(0.50) * 1000,
            p95_ms=self.latency.percentile(0.95) * 1000,
            p99_ms=self.latency.percentile(0.99) * 1000,
        )
        return TierStats(
            hits=self.hits,
            misses=self.misses,
            sets=self.sets,
            errors=self.errors,
            skipped=self.skipped,
            evictions=self.evictions,
            bytes_read=self.bytes_read,
            bytes_written=self.bytes_written,
            latency=latency,
        )


class _NamespaceCounters:
    __slots__ = ("computations", "errors", "l1", "l2", "misses", "refreshes")

    def __init__(self) -> None:
        self.l1 = _TierCounters()
        self.l2 = _TierCounters()
        self.misses = self.computations = self.errors = self.refreshes = 0


class StatsRecorder:
    """Thread-safe counters; every method is a dict lookup and a few additions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._namespaces: dict[str, _NamespaceCounters] = {}
        # namespace -> its L1 / L2 counters, read without the lock by
        # ``l1_hit`` / ``l2_hit`` (a dict read is atomic; entries are only
        # ever added).
        self._l1: dict[str, _TierCounters] = {}
        self._l2: dict[str, _TierCounters] = {}

    def hit(self, namespace: str, tier: Tier, *, nbytes: int, seconds: float) -> None:
        """A tier served a value of ``nbytes`` in ``seconds``."""
        if tier is Tier.L1:
            self.l1_hit(namespace, nbytes, seconds)
        else:
            self.l2_hit(namespace, nbytes, seconds)

    def l2_hit(self, namespace: str, nbytes: int, seconds: float) -> None:
        """``hit`` for L2, on the hot path of a Redis hit (every one is timed).

        Positional and without the ``Tier`` enum: in a process that has just
        woken from a socket read, the general ``hit`` cost several
        microseconds of an L2 hit (bench/l2_breakdown.py).
        """
        counters = self._l2.get(namespace)
        if counters is None:
            with self._lock:
                counters = self._l2[namespace] = self._namespace(namespace).l2
        lock = self._lock
        lock.acquire()
        counters.hits += 1
        counters.bytes_read += nbytes
        try:
            counters.latency.record(seconds)
        finally:
            lock.release()

    def l1_hit(self, namespace: str, nbytes: int, seconds: float | None) -> None:
        """``hit`` for L1, on the hot path: ``seconds`` is ``None`` when not timed."""
        counters = self._l1.get(namespace)
        if counters is None:
            with self._lock:
                counters = self._l1[namespace] = self._namespace(namespace).l1
        lock = self._lock
        lock.acquire()  # not ``with``: measurably cheaper, and nothing below can raise
        counters.hits += 1
        counters.bytes_read += nbytes
        if seconds is None:
            counters.latency.untimed += 1
            lock.release()
            return
        try:
            counters.latency.record(seconds)
        finally:
            lock.release()

    def tier_miss(self, namespace: str, tier: Tier, *, seconds: float | None) -> None:
        """A tier did not have the key (``seconds``: ``None`` when not timed)."""
        with self._lock:
            counters = self._tier(namespace, tier)
            counters.misses += 1
            if seconds is None:
                counters.latency.untimed += 1
            else:
                counters.latency.record(seconds)

    def stored(self, namespace: str, tier: Tier, *, nbytes: int) -> None:
        """A tier stored ``nbytes``."""
        with self._lock:
            counters = self._tier(namespace, tier)
            counters.sets += 1
            counters.bytes_written += nbytes

    def tier_error(self, namespace: str, tier: Tier) -> None:
        """A tier failed (Redis trouble) or held undecodable bytes."""
        with self._lock:
            self._tier(namespace, tier).errors += 1
            self._namespace(namespace).errors += 1

    def tier_skipped(self, namespace: str, tier: Tier) -> None:
        """The breaker was open: the tier was not asked."""
        with self._lock:
            self._tier(namespace, tier).skipped += 1

    def error(self, namespace: str) -> None:
        """A failure not tied to a tier (e.g. a value no codec can encode)."""
        with self._lock:
            self._namespace(namespace).errors += 1

    def evicted(self, namespace: str, tier: Tier) -> None:
        """A tier dropped an entry for lack of room."""
        with self._lock:
            self._tier(namespace, tier).evictions += 1

    def miss(self, namespace: str) -> None:
        """No tier had the value."""
        with self._lock:
            self._namespace(namespace).misses += 1

    def computed(self, namespace: str) -> None:
        """The wrapped function ran."""
        with self._lock:
            self._namespace(namespace).computations += 1

    def refreshed(self, namespace: str) -> None:
        """A background refresh computed and stored an entry again."""
        with self._lock:
            self._namespace(namespace).refreshes += 1

    def snapshot(self) -> Mapping[str, NamespaceStats]:
        """Every namespace seen so far, frozen at this moment."""
        with self._lock:
            return {
                name: NamespaceStats(
                    namespace=name,
                    l1=counters.l1.snapshot(),
                    l2=counters.l2.snapshot(),
                    misses=counters.misses,
                    computations=counters.computations,
                    errors=counters.errors,
                    refreshes=counters.refreshes,
                )
                for name, counters in sorted(self._namespaces.items())
            }

    def _namespace(self, namespace: str) -> _NamespaceCounters:
        counters = self._namespaces.get(namespace)
        if counters is None:
            counters = self._namespaces[namespace] = _NamespaceCounters()
        return counters

    def _tier(self, namespace: str, tier: Tier) -> _TierCounters:
        counters = self._namespace(namespace)
        return counters.l1 if tier is Tier.L1 else counters.l2
