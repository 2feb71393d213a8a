"""L1: an in-process LRU bounded by total bytes and entry count, with TTL.

It keeps two kinds of entries under one budget: ``bytes`` (the
``CacheBackend`` contract: ``get``/``set``) and Python objects with the size
of their encoded form (``get_object``/``set_object``), which is what
``TieredCache`` stores so that an L1 hit decodes nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from salescast.cache.backends.base import StoredEntry
from salescast.cache.lifetime import Lifetime

Clock = Callable[[], float]
EvictionListener = Callable[[str, int], None]
# Told (key, seconds) when a hit renews a sliding entry for that many seconds.
RenewListener = Callable[[str, float], None]

# Bytes charged per entry on top of key and value: the OrderedDict node, the
# tuple and the two objects' headers. Without it a flood of tiny entries would
# use several times the configured budget.
_ENTRY_OVERHEAD = 96


class MemoryEntry(NamedTuple):
    """One L1 entry as ``get_object`` returns it (the stored tuple itself, not a copy).

    ``value`` is the object stored (shared: never mutate it); ``nbytes`` the
    size it is charged for (its encoded size for objects, its length for
    bytes); ``expires_at`` the backend clock's deadline, ``None`` for no expiry.

    A sliding entry (stored with a ``Lifetime``) lives until ``idle_until``,
    which a hit pushes on; its ``expires_at`` is only the next moment a read
    must look at it again (to renew it, or because its refresh point came),
    so the hit path keeps one comparison for both kinds.
    """

    value: Any
    nbytes: int
    expires_at: float | None
    life: Lifetime | None = None
    idle_until: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryUsage:
    """Size of the L1 tier at one moment."""

    entries: int
    bytes: int
    max_entries: int
    max_bytes: int
    evictions: int


class MemoryBackend:
    """Least-recently-used store in this process: ``bytes`` (see ``CacheBackend``) or objects.

    Bounded by ``max_bytes`` (key + value size + a fixed overhead per entry)
    and by ``max_entries``; the least recently used entries are evicted
    first, and each eviction is counted and reported to ``on_evict(key,
    size)``. A value larger than the whole budget is not stored. Expired
    entries are dropped when touched, not by a background thread.

    Two faces share the map, the budget and every other method:

    - ``get``/``set``: the bytes contract every backend keeps (same suite as
      Redis). ``get`` of a key that holds an object (not ``bytes``) is a miss.
    - ``get_object``/``set_object``: any Python object, charged at the size
      the caller gives (``TieredCache`` gives the length of its encoded
      frame, so the budget counts what Redis would hold, not the object's
      own memory, which may be several times larger). The object is kept as
      it is and handed back as it is: every reader shares it.

    One ``threading.Lock`` serializes every change to the map and is never
    held across I/O or an ``await``, so the backend is safe from threads and
    from asyncio tasks alike; ``get_object`` reads without it (see there).
    ``clock`` (monotonic seconds) is injectable for tests.
    """

    def __init__(
        self,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_entries: int = 10_000,
        clock: Clock = time.monotonic,
        on_evict: EvictionListener | None = None,
    ) -> None:
        if max_bytes <= 0 or max_entries <= 0:
            raise ValueError("max_bytes and max_entries must be positive")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._clock = clock
        self._on_evict = on_evict
        self._on_renew: RenewListener | None = None
        self._lock = threading.Lock()
        # key -> entry; order is recency, oldest first.
        self._data: OrderedDict[str, MemoryEntry] = OrderedDict()
        self._bytes = 0
        self._evictions = 0

    def set_eviction_listener(self, listener: EvictionListener | None) -> None:
        """Install the callback told about every capacity eviction."""
        self._on_evict = listener

    def clock(self) -> float:
        """Now, on this backend's clock (monotonic seconds unless injected)."""
        return self._clock()

    def set_renew_listener(self, listener: RenewListener | None) -> None:
        """Install the callback told when a hit renews a sliding entry (to renew L2 too)."""
        self._on_renew = listener

    def get_object(self, key: str) -> MemoryEntry | None:
        """The live entry of ``key``, refreshing its recency; ``None`` when absent or expired.

        The hot path of an L1 hit: one dict lookup, no copy, and no lock.
        Each ``OrderedDict`` operation on ``str`` keys is a single C call
        that runs under the GIL, so a read sees the map before or after any
        writer's step, never in between; writers (and expiry removal) still
        serialize on the lock, and nothing iterates the map while it is
        unlocked. An entry removed by a writer between the lookup and the
        recency update is still returned: the read happened first.
        """
        data = self._data
        entry = data.get(key)
        if entry is None:
            return None
        expires_at = entry.expires_at
        if expires_at is not None and expires_at <= self._clock():
            if entry.life is not None:
                return self._look_again(key, entry)
            with self._lock:
                if data.get(key) is entry:
                    self._remove(key)
            return None
        try:  # noqa: SIM105 - contextlib.suppress would cost a context manager per hit
            data.move_to_end(key)
        except KeyError:
            pass
        return entry

    def _look_again(self, key: str, entry: MemoryEntry) -> MemoryEntry | None:
        # A sliding entry at its renewal or refresh point (see MemoryEntry).
        life, idle_until = entry.life, entry.idle_until
        assert life is not None
        assert idle_until is not None
        now = self._clock()
        if now >= idle_until:
            with self._lock:
                if self._data.get(key) is entry:
                    self._remove(key)
            return None
        if now >= life.refresh_at:
            return None  # kept for `get_stale`: served while it is refreshed
        renewed_until = min(now + life.idle, life.ends_at)
        renewed = entry._replace(
            expires_at=_look_again_at(renewed_until, life), idle_until=renewed_until
        )
        with self._lock:
            if self._data.get(key) is not entry:
                return entry  # a writer replaced it meanwhile: the read happened first
            self._data[key] = renewed
            self._data.move_to_end(key)
        if self._on_renew is not None:
            self._on_renew(key, renewed_until - now)
        return renewed

    def get_stale(self, key: str) -> MemoryEntry | None:
        """A sliding entry past its refresh point but still in its stale window, else ``None``.

        What a read serves while the entry is refreshed; plain reads
        (``get_object``) miss such an entry so that the caller refreshes it.
        """
        entry = self._data.get(key)
        if entry is None or entry.life is None or entry.idle_until is None:
            return None
        if self._clock() >= entry.idle_until:
            return None
        return entry

    def set_object(
        self,
        key: str,
        value: Any,
        *,
        nbytes: int,
        ttl: float | None,
        life: Lifetime | None = None,
    ) -> None:
        """Keep ``value`` itself for ``ttl`` seconds, charged ``nbytes`` against the budget.

        With ``life`` the entry is sliding: it lives ``life.idle`` seconds
        after its last hit, never past ``life.ends_at`` (``ttl`` is ignored).
        """
        with self._lock:
            evicted = self._insert(key, value, nbytes, ttl, life)
        self._report(evicted)

    def get(self, key: str) -> StoredEntry | None:
        """Return the bytes and remaining TTL, refreshing recency; ``None`` on a miss."""
        entry = self.get_object(key)
        if entry is None or not isinstance(entry.value, bytes):
            return None
        ends = _ends_at(entry)
        if ends is None:
            return StoredEntry(entry.value, None)
        remaining = ends - self._clock()
        return StoredEntry(entry.value, remaining) if remaining > 0 else None

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds, evicting the least recently used as needed."""
        self.set_object(key, value, nbytes=len(value), ttl=ttl)

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when it held a live value."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return False
            self._remove(key)
            return self._live(entry)

    def exists(self, key: str) -> bool:
        """``True`` when ``key`` holds a live value (does not refresh recency)."""
        with self._lock:
            entry = self._data.get(key)
            return entry is not None and self._live(entry)

    def expire(self, key: str, ttl: float) -> bool:
        """Give a live key a new TTL in seconds; a TTL ``<= 0`` removes it."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None or not self._live(entry):
                return False
            if ttl <= 0:
                self._remove(key)
            else:  # a fixed TTL from now on, also for a sliding entry
                self._data[key] = MemoryEntry(entry.value, entry.nbytes, self._clock() + ttl)
            return True

    def incr(self, key: str) -> int:
        """Add one to the decimal counter stored at ``key`` and return it."""
        with self._lock:
            entry = self._data.get(key)
            value = (int(entry.value) if entry is not None else 0) + 1
            encoded = str(value).encode()
            evicted = self._insert(key, encoded, len(encoded), None)
        self._report(evicted)
        return value

    def get_counter(self, key: str) -> int:
        """Read the counter at ``key``; absent reads 0."""
        entry = self.get(key)
        return int(entry.value) if entry is not None else 0

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``."""
        with self._lock:
            # list() copies the keys in one C call: lock-free readers move
            # entries to the end, which would break a Python-level iteration.
            doomed = [key for key in list(self._data) if key.startswith(prefix)]
            for key in doomed:
                self._remove(key)
            return len(doomed)

    def delete_many(self, keys: list[str]) -> int:
        """Remove the listed keys; return how many were present."""
        with self._lock:
            removed = 0
            for key in keys:
                if key in self._data:
                    self._remove(key)
                    removed += 1
            return removed

    def clear(self) -> int:
        """Remove every entry; return how many there were."""
        with self._lock:
            count = len(self._data)
            self._data.clear()
            self._bytes = 0
            return count

    def usage(self) -> MemoryUsage:
        """Entries, bytes and evictions now."""
        with self._lock:
            return MemoryUsage(
                entries=len(self._data),
                bytes=self._bytes,
                max_entries=self.max_entries,
                max_bytes=self.max_bytes,
                evictions=self._evictions,
            )

    def close(self) -> None:
        """Drop every entry."""
        self.clear()

    def _live(self, entry: MemoryEntry) -> bool:
        ends = _ends_at(entry)
        return ends is None or ends > self._clock()

    def _insert(
        self,
        key: str,
        value: Any,
        nbytes: int,
        ttl: float | None,
        life: Lifetime | None = None,
    ) -> list[tuple[str, int]]:
        # Caller holds the lock. Returns the evicted (key, size) pairs.
        if key in self._data:
            self._remove(key)
        size = _size(key, nbytes)
        now = self._clock()
        if life is not None:
            idle_until = min(now + life.idle, life.ends_at)
            if idle_until <= now or size > self.max_bytes:
                return []
            entry = MemoryEntry(value, nbytes, _look_again_at(idle_until, life), life, idle_until)
        else:
            if (ttl is not None and ttl <= 0) or size > self.max_bytes:
                return []
            entry = MemoryEntry(value, nbytes, None if ttl is None else now + ttl)
        self._data[key] = entry
        self._bytes += size
        evicted: list[tuple[str, int]] = []
        while self._bytes > self.max_bytes or len(self._data) > self.max_entries:
            old_key, old_entry = self._data.popitem(last=False)
            old_size = _size(old_key, old_entry.nbytes)
            self._bytes -= old_size
            self._evictions += 1
            evicted.append((old_key, old_size))
        return evicted

    def _report(self, evicted: list[tuple[str, int]]) -> None:
        # Called outside the lock: a listener may call back into this backend.
        if self._on_evict is not None:
            for key, size in evicted:
                self._on_evict(key, size)

    def _remove(self, key: str) -> None:
        entry = self._data.pop(key)
        self._bytes -= _size(key, entry.nbytes)


def _ends_at(entry: MemoryEntry) -> float | None:
    """When an entry stops being live (a sliding one: at the end of its idle time)."""
    return entry.idle_until if entry.life is not None else entry.expires_at


def _look_again_at(idle_until: float, life: Lifetime) -> float:
    """When a read must look at a sliding entry again: half its idle time, or its refresh point.

    Renewing only once half of the idle time is gone keeps renewals (and the
    Redis ``PEXPIRE`` each one sends) to one per half idle time per key.
    Once the idle time is capped by the end of the stale window there is
    nothing left to renew: only the refresh point matters.
    """
    if idle_until >= life.ends_at:
        return min(life.refresh_at, idle_until)
    return min(idle_until - life.idle / 2, life.refresh_at)


def _size(key: str, nbytes: int) -> int:
    return len(key) + nbytes + _ENTRY_OVERHEAD
