"""The cross-process computation lease: one process computes a cold key, others wait.

After a miss in both tiers, a process takes ``prefix:_lease:<key>`` with
``SET NX PX`` and a random token, computes, stores, and releases the lease
with a Lua compare-and-delete (only the token's owner can release it). A
process that finds the lease taken polls L2 (20 ms, growing to 100 ms) for
the value; when the lease disappears without a value (the owner failed) it
tries to take the lease itself; when a whole lease TTL passes it computes on
its own rather than wait longer. Any Redis failure ends the dance: the caller
computes and keeps the result in L1 only. Hits never touch the lease.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from salescast.cache.guard import Unavailable
from salescast.cache.lookup import MISSING, CacheSource

if TYPE_CHECKING:
    from salescast.cache.tiered import TieredCache

T = TypeVar("T")
MAX_POLL_INTERVAL = 0.1


def new_token() -> bytes:
    """A random lease token; only its holder may release the lease."""
    return secrets.token_hex(16).encode()


def fill_under_lease(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    compute: Callable[[], T],
    ttl: float | None,
    tags: tuple[str, ...],
) -> tuple[Any, CacheSource]:
    """Compute ``entry_key`` once across processes (see the module docstring)."""
    assert cache.l2 is not None
    l2 = cache.l2
    lease_key = cache.keys.lease_key(entry_key)
    token = new_token()
    deadline = cache.clock() + cache.lease_ttl
    acquired, redis_ok = False, True
    while cache.clock() < deadline:
        got = cache.guard.call(lambda: l2.set_if_absent(lease_key, token, cache.lease_ttl))
        if isinstance(got, Unavailable):
            redis_ok = False
            break
        if got:
            acquired = True
            break
        value = _await_value(cache, namespace, entry_key, lease_key, tags, deadline)
        if isinstance(value, Unavailable):
            redis_ok = False
            break
        if value is not MISSING:
            return value, CacheSource.HIT_L2
    try:
        if acquired:
            # The previous owner may have stored the value between our miss
            # and our lease: look once more before computing again.
            value = cache.io.read_l2(namespace, entry_key, tags, count=False)
            if not isinstance(value, Unavailable) and value is not MISSING:
                return value, CacheSource.HIT_L2
        value = cache.io.compute_and_store(namespace, entry_key, compute, ttl, tags, l2=redis_ok)
        return value, CacheSource.MISS
    finally:
        if acquired:
            cache.guard.call(lambda: l2.delete_if_equals(lease_key, token))


def _await_value(
    cache: TieredCache,
    namespace: str,
    entry_key: str,
    lease_key: str,
    tags: tuple[str, ...],
    deadline: float,
) -> Any:
    """Poll L2 while another process holds the lease.

    Returns the value, ``MISSING`` when the lease is gone without a value or
    the deadline passed, or an ``Unavailable`` marker when Redis failed.
    """
    assert cache.l2 is not None
    l2 = cache.l2
    interval = cache.lease_poll_interval
    while cache.clock() < deadline:
        cache.sleep(interval)
        interval = min(interval * 1.5, MAX_POLL_INTERVAL)
        value = cache.io.read_l2(namespace, entry_key, tags, count=False)
        if value is not MISSING:
            return value
        held = cache.guard.call(lambda: l2.exists(lease_key))
        if isinstance(held, Unavailable):
            return held
        if not held:
            # Released: the owner stored the value just before, or failed.
            return cache.io.read_l2(namespace, entry_key, tags, count=False)
    return MISSING
