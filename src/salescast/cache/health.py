"""Typed snapshots a cache reports: statistics and health."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from salescast.cache.backends.memory import MemoryUsage
from salescast.cache.breaker import BreakerSnapshot
from salescast.cache.stats import NamespaceStats


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Everything counted, at one moment (``TieredCache.stats()``).

    ``namespaces`` maps a namespace (``model``, ``prediction``, ``data``, ...)
    to its per-tier counters; ``l1`` is the in-process tier's size (``None``
    without L1); ``breaker`` is ``None`` without L2; ``subscription`` is the
    pub/sub state (``None`` without L2).
    """

    namespaces: Mapping[str, NamespaceStats]
    l1: MemoryUsage | None
    breaker: BreakerSnapshot | None
    subscription: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with ``hits`` and ``hit_rate`` per namespace."""
        namespaces = {}
        for name, stats in self.namespaces.items():
            entry = asdict(stats)
            entry["hits"] = stats.hits
            entry["hit_rate"] = stats.hit_rate
            namespaces[name] = entry
        return {
            "namespaces": namespaces,
            "l1": asdict(self.l1) if self.l1 is not None else None,
            "breaker": asdict(self.breaker) if self.breaker is not None else None,
            "subscription": self.subscription,
        }


@dataclass(frozen=True, slots=True)
class CacheHealth:
    """Whether the tiers work now (``TieredCache.health()``; does one PING at most).

    ``backend`` is ``"memory"`` (L1 only) or ``"redis"`` (L1 + L2).
    ``redis_reachable`` is ``None`` without Redis, and ``False`` without I/O
    while the breaker is open. ``latency_ms`` is the PING round trip.
    """

    backend: str
    redis_url: str | None
    redis_reachable: bool | None
    redis_version: str | None
    latency_ms: float | None
    breaker_state: str | None
    subscription: str | None
    l1_entries: int
    l1_bytes: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)
