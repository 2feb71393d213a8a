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
from salescast.cache.frames import FrameSerializer, FrameTimes, frame_times
from salescast.cache.guard import FAILED, Unavailable
from salescast.cache.keys import KeyBuilder
from salescast.cache.lifetime import LifetimePolicy, Verdict, is_sliding
from salescast.cache.lookup import MISSING
from salescast.cache.stats import StatsRecorder, Tier

# L1 lookups whose count has any of these bits set are not timed: one in 16 is.
_L1_UNTIMED_MASK = 15
L1StoreListener = Callable[[str, tuple[str, ...]], None]
# (entry key, seconds): give the L2 entry that TTL, off the request path.
L2Toucher = Callable[[str, float], None]


class Stale:
    """A value read that is to be served *and* refreshed in the background (its age, not
    its version, is past the policy's point: see ``salescast.cache.lifetime``)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


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
        lifetime: LifetimePolicy | None = None,
        refresh_grace: float = 10.0,
        touch_l2: L2Toucher | None = None,
    ) -> None:
        self.l1 = l1
        self.lifetime = lifetime if lifetime is not None else LifetimePolicy()
        self.wall_clock = serializer.wall_clock
        self.refresh_grace = refresh_grace
        self.touch_l2 = touch_l2
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
        ttl: float | None = None,
    ) -> Any:
        """Count and decode what an L2 read returned; a hit is put into L1 with
        the TTL it has left. The value, ``MISSING`` or the guard's marker.

        For a sliding ``ttl`` (``IdleTTL``) the entry's age decides
        (``LifetimePolicy.verdict``): past its stale window it is a miss; due
        for a refresh it comes back wrapped in ``Stale`` (to serve, and to
        refresh in the background); and a Redis TTL below half the idle time
        is renewed in the background.
        """
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
        if not is_sliding(ttl):
            self.stats.l2_hit(namespace, len(entry.value), seconds)
            self.store_l1(namespace, entry_key, value, len(entry.value), entry.ttl, tags)
            return value
        assert ttl is not None
        times = frame_times(entry.value)
        verdict = self.lifetime.verdict(times, self.wall_clock())
        if verdict is Verdict.EXPIRED:
            if count:
                self.stats.tier_miss(namespace, Tier.L2, seconds=seconds)
            return MISSING
        self.stats.l2_hit(namespace, len(entry.value), seconds)
        refreshing = verdict is Verdict.REFRESH
        self.store_l1(namespace, entry_key, value, len(entry.value), ttl, tags, times, refreshing)
        if (
            not refreshing
            and self.touch_l2 is not None
            and entry.ttl is not None
            and entry.ttl < ttl / 2
        ):
            self.touch_l2(entry_key, self.lifetime.l2_ttl(ttl, times, self.wall_clock()))
        return Stale(value) if refreshing else value

    def read_l1_stale(self, namespace: str, entry_key: str, ttl: float | None) -> Any:
        """A sliding L1 entry due for its refresh (still in its stale window), or ``MISSING``.

        Served while the refresh runs: it is kept as a plain hit for the
        refresh's grace period, so this process's other readers hit it.
        """
        l1 = self.l1
        if l1 is None or not is_sliding(ttl):
            return MISSING
        entry = l1.get_stale(entry_key)
        if entry is None or entry.life is None:
            return MISSING
        self.stats.l1_hit(namespace, entry.nbytes, None)
        assert ttl is not None
        l1.set_object(
            entry_key,
            entry.value,
            nbytes=entry.nbytes,
            ttl=None,
            life=self.lifetime.l1_lifetime(
                ttl,
                entry.life.times,
                wall_now=self.wall_clock(),
                l1_now=l1.clock(),
                grace=self.refresh_grace,
            ),
        )
        return entry.value

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

    def encode(
        self, namespace: str, entry_key: str, value: Any, compute_seconds: float = 0.0
    ) -> bytes | None:
        try:
            return self.serializer.dumps(entry_key, value, compute_seconds=compute_seconds)
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
        times: FrameTimes | None = None,
        refreshing: bool = False,
    ) -> None:
        """Keep ``value`` itself in L1, charged ``nbytes`` (the length of its frame).

        A sliding ``ttl`` with the frame's ``times`` stores a sliding entry
        (``refreshing``: it is served as a plain hit only for the refresh's
        grace period).
        """
        l1 = self.l1
        if l1 is None or (ttl is not None and ttl <= 0):
            return
        if times is not None and is_sliding(ttl):
            assert ttl is not None
            life = self.lifetime.l1_lifetime(
                ttl,
                times,
                wall_now=self.wall_clock(),
                l1_now=l1.clock(),
                grace=self.refresh_grace if refreshing else None,
            )
            l1.set_object(entry_key, value, nbytes=nbytes, ttl=None, life=life)
        else:
            l1.set_object(entry_key, value, nbytes=nbytes, ttl=ttl)
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
