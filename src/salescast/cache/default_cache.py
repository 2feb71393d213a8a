"""The cache decorators use when they name none: ``configure()`` sets it."""

from __future__ import annotations

import logging
import threading

from salescast.cache.tiered import TieredCache

logger = logging.getLogger("salescast.cache")

_default_lock = threading.Lock()
_default_cache: TieredCache | None = None


def configure(cache: TieredCache | None) -> None:
    """Make ``cache`` the one decorators use when they name none (``None`` resets)."""
    global _default_cache
    with _default_lock:
        _default_cache = cache


def get_default_cache() -> TieredCache:
    """The configured cache; an in-process-only one if ``configure`` was never called."""
    global _default_cache
    cache = _default_cache  # read once: the hit path takes no lock
    if cache is not None:
        return cache
    with _default_lock:
        if _default_cache is None:
            logger.info("no cache configured; using an in-process cache (no Redis tier)")
            _default_cache = TieredCache(prefix="salescast")
        return _default_cache
