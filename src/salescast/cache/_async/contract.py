"""The L2 contract, asyncio face: what the cache's control flow needs from a shared backend.

Every shared tier (one Redis today) implements this protocol and its sync
face, ``salescast.cache._sync.contract.SharedBackend``, generated from this
file; the control flow (``flow.py``) depends on nothing else of a backend.
The contract test suite (tests/cache/test_backend_contract.py) runs every
implementation against it.

Contract: keys and values are ``str``/``bytes``; TTLs are seconds (``float``,
``None``: no expiry). Every method raises only
``salescast.cache.errors.BackendUnavailableError`` (or a subclass:
``BackendTimeoutError``, ``PoolExhaustedError``) when the backend cannot be
reached or answers with an error; a miss is never an exception. Safe to call
from several threads (the sync face) or several tasks of one event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from salescast.cache.backends.base import StoredEntry


class AsyncSharedBackend(Protocol):
    """A shared tier of framed bytes with counters, leases and pub/sub (asyncio face)."""

    async def aget(self, key: str) -> StoredEntry | None:
        """The value and its remaining TTL in one round trip, or ``None`` on a miss."""
        ...

    async def aget_value(self, key: str) -> bytes | None:
        """The value alone (no TTL asked), or ``None`` on a miss."""
        ...

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds; a TTL ``<= 0`` removes the key instead."""
        ...

    async def adelete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when something was removed (idempotent)."""
        ...

    async def aexists(self, key: str) -> bool:
        """``True`` when ``key`` holds a live value."""
        ...

    async def aexpire(self, key: str, ttl: float) -> bool:
        """Give an existing key a new TTL; ``False`` when it is absent."""
        ...

    async def aget_counter(self, key: str) -> int:
        """The counter at ``key``; an absent counter reads 0."""
        ...

    async def aincr(self, key: str) -> int:
        """Atomically add one to the counter at ``key`` (absent counts as 0), return it."""
        ...

    async def aset_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Create ``key`` only if absent (a lease); ``True`` when this call created it."""
        ...

    async def adelete_if_equals(self, key: str, value: bytes) -> bool:
        """Delete ``key`` only while it still holds ``value`` (atomic compare-and-delete)."""
        ...

    async def adelete_matching(
        self, pattern: str, keep: Callable[[bytes], bool] | None = None
    ) -> int:
        """Delete every key matching the glob ``pattern`` but those ``keep`` accepts.

        Never one blocking command over the whole keyspace; returns how many
        keys were removed.
        """
        ...

    async def apublish(self, channel: str, message: bytes) -> int:
        """Send ``message`` to every subscriber of ``channel``; return how many got it."""
        ...

    async def aping(self) -> bool:
        """One round trip: ``True`` when the backend answers."""
        ...

    async def aserver_info(self) -> dict[str, Any]:
        """What the backend says of itself (version, uptime) for health reports."""
        ...
