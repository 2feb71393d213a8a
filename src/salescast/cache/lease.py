"""The cross-process computation lease's token and polling pace.

The lease itself (``SET NX PX`` with a random token, polling L2 while
another process computes, Lua compare-and-delete on release) is part of the
control flow, written once in ``_async/flow.py`` (``fill_under_lease``) for
both faces; see that module's docstring.
"""

from __future__ import annotations

import secrets

# Polling starts at the cache's lease_poll_interval and grows 1.5x to this (s).
MAX_POLL_INTERVAL = 0.1


def new_token() -> bytes:
    """A random lease token; only its holder may release the lease."""
    return secrets.token_hex(16).encode()
