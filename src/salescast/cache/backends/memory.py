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

Clock = Callable[[], float]
EvictionListener = Callable[[str, int], None]

# Bytes charged per entry on top of key and value: the OrderedDict node, the
# tuple and the two objects' headers. Without it a flood of tiny entries would
# use several times the configured budget.
_ENTRY_OVERHEAD = 96


class MemoryEntry(NamedTuple):
    """One L1 entry as ``get_object`` returns it (the stored tuple itself, not a copy).

    ``value`` is the object stored (shared: never mutate it); ``nbytes`` the
    size it is charged for (its encoded size for objects, its length for
    bytes); ``expires_at`` the backend clock's deadline, ``None`` for no expiry.
    """

    value: Any
    nbytes: int
    expires_at: float | None


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
        self._lock = threading.Lock()
        # key -> entry; order is recency, oldest first.
        self._data: OrderedDict[str, MemoryEntry] = OrderedDict()
        self._bytes = 0
        self._evictions = 0

    def set_eviction_listener(self, listener: EvictionListener | None) -> None:
        """Install the callback told about every capacity eviction."""
        self._on_evict = listener

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
            with self._lock:
                if data.get(key) is entry:
                    self._remove(key)
            return None
        try:  # noqa: SIM105 - contextlib.suppress would cost a context manager per hit
            data.move_to_end(key)
        except KeyError:
            pass
        return entry

    def set_object(self, key: str, value: Any, *, nbytes: int, ttl: float | None) -> None:
        """Keep ``value`` itself for ``ttl`` seconds, charged ``nbytes`` against the budget."""
        with self._lock:
            evicted = self._insert(key, value, nbytes, ttl)
        self._report(evicted)

    def get(self, key: str) -> StoredEntry | None:
        """Return the bytes and remaining TTL, refreshing recency; ``None`` on a miss."""
        entry = self.get_object(key)
        if entry is None or not isinstance(entry.value, bytes):
            return None
        if entry.expires_at is None:
            return StoredEntry(entry.value, None)
        remaining = entry.expires_at - self._clock()
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
            return entry.expires_at is None or entry.expires_at > self._clock()

    def exists(self, key: str) -> bool:
        """``True`` when ``key`` holds a live value (does not refresh recency)."""
        with self._lock:
            entry = self._data.get(key)
            return entry is not None and (
                entry.expires_at is None or entry.expires_at > self._clock()
            )

    def expire(self, key: str, ttl: float) -> bool:
        """Give a live key a new TTL in seconds; a TTL ``<= 0`` removes it."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None or (
                entry.expires_at is not None and entry.expires_at <= self._clock()
            ):
                return False
            if ttl <= 0:
                self._remove(key)
            else:
                self._data[key] = entry._replace(expires_at=self._clock() + ttl)
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

    def _insert(
        self, key: str, value: Any, nbytes: int, ttl: float | None
    ) -> list[tuple[str, int]]:
        # Caller holds the lock. Returns the evicted (key, size) pairs.
        if key in self._data:
            self._remove(key)
        size = _size(key, nbytes)
        if (ttl is not None and ttl <= 0) or size > self.max_bytes:
            return []
        expires_at = None if ttl is None else self._clock() + ttl
        self._data[key] = MemoryEntry(value, nbytes, expires_at)
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


def _size(key: str, nbytes: int) -> int:
    return len(key) + nbytes + _ENTRY_OVERHEAD
