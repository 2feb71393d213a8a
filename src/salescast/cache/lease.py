"""The cross-process computation lease's token and polling pace.

The lease itself (``SET NX PX`` with a random token, polling L2 while
another process computes, Lua compare-and-delete on release) is part of the
control flow, written once in ``_async/flow.py`` (``fill_under_lease``) for
both faces; see that module's docstring.
"""

from __future__ import annotations

import secrets
import threading

# Polling starts at the cache's lease_poll_interval and grows 1.5x to this (s).
MAX_POLL_INTERVAL = 0.1


def new_token() -> bytes:
    """A random lease token; only its holder may release the lease."""
    return secrets.token_hex(16).encode()


class OwedLeases:
    """Leases this process took and could not release, to release once Redis answers.

    A lease taken just before its master died survives on the replica that is
    promoted; left alone, every other process waiting for that key would poll
    until the lease's TTL ran out. The control flow notes such a lease here
    when its release fails, and releases it (compare-and-delete: only if it
    still holds our token) on its next miss that reaches Redis. Bounded:
    past ``limit`` the oldest are forgotten (they expire on their own).
    Thread-safe; shared by the sync and asyncio faces.
    """

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._owed: list[tuple[str, bytes]] = []
        self.pending = False
        """Whether anything is owed: read without the lock on every miss."""

    def owe(self, lease_key: str, token: bytes) -> None:
        """Note a lease whose release failed."""
        with self._lock:
            self._owed.append((lease_key, token))
            del self._owed[: -self._limit]
            self.pending = True

    def take(self) -> list[tuple[str, bytes]]:
        """Every owed lease, forgotten here (owe them again if releasing fails)."""
        with self._lock:
            owed, self._owed = self._owed, []
            self.pending = False
        return owed
