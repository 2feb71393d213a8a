"""The contract every cache backend keeps: bytes in, bytes out, by key.

``CacheBackend`` is the byte store any tier can be (L1's ``MemoryBackend``,
Redis). The shared tier's contract, a superset with counters, leases and
pub/sub that the control flow uses, is ``SharedBackend`` /
``AsyncSharedBackend`` (``_sync/contract.py``, ``_async/contract.py``); the
methods both name (get, set, delete, ...) are stated in both, each with the
contract of its own protocol.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable


class StoredEntry(NamedTuple):
    """What a backend returns on a hit.

    ``ttl`` is the remaining time to live in seconds (float), or ``None`` when
    the entry never expires. The tiered cache uses it to fill L1 from L2 with
    the time the entry has left, never with a fresh full TTL.
    """

    value: bytes
    ttl: float | None


@runtime_checkable
class CacheBackend(Protocol):
    """A store of ``bytes`` values under ``str`` keys.

    Contract (checked by one test suite run against every backend):

    - **Miss:** ``get`` returns ``None`` for an absent or expired key. Values are
      never empty-vs-missing ambiguous: a stored ``b""`` is a hit.
    - **TTL units:** seconds, as ``float``; ``None`` means no expiry. A TTL
      ``<= 0`` on ``set`` stores nothing (and removes an old value).
    - **Idempotent:** ``set`` overwrites; ``delete`` of an absent key returns
      ``False`` and is not an error; ``delete_prefix`` may be repeated.
    - **Raises:** only :class:`~salescast.cache.errors.BackendUnavailableError`
      when the store cannot be reached or answers with an error. A backend
      never raises for a miss.
    - **Keys:** a backend does not interpret keys beyond ``delete_prefix``;
      key layout belongs to the tiered cache (``salescast.cache.keys``).
    - **Safety:** every method may be called from several threads at once.
    """

    def get(self, key: str) -> StoredEntry | None:
        """Return the stored value and its remaining TTL, or ``None`` on a miss."""
        ...

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: no expiry)."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when something was removed."""
        ...

    def exists(self, key: str) -> bool:
        """``True`` when ``key`` holds a live value."""
        ...

    def expire(self, key: str, ttl: float) -> bool:
        """Give an existing key a new TTL in seconds; ``False`` when it is absent."""
        ...

    def incr(self, key: str) -> int:
        """Atomically add one to the counter at ``key`` (absent counts as 0), return it."""
        ...

    def get_counter(self, key: str) -> int:
        """Read the counter at ``key``; an absent counter reads 0."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``; return how many were removed."""
        ...

    def close(self) -> None:
        """Release connections and memory; the backend is unusable afterwards."""
        ...


class AsyncCacheBackend(Protocol):
    """The asyncio face of a backend that does network I/O (same contract)."""

    async def aget(self, key: str) -> StoredEntry | None:
        """As :meth:`CacheBackend.get`."""
        ...

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """As :meth:`CacheBackend.set`."""
        ...

    async def adelete(self, key: str) -> bool:
        """As :meth:`CacheBackend.delete`."""
        ...

    async def aget_counter(self, key: str) -> int:
        """As :meth:`CacheBackend.get_counter`."""
        ...

    async def aclose(self) -> None:
        """Release the asyncio connections of the running event loop."""
        ...
