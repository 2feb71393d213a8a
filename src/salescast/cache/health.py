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
class NodeReport:
    """One Redis server of the shared tier now: address, role, whether it answered."""

    address: str
    role: str | None
    answers: bool


@dataclass(frozen=True, slots=True)
class TopologyReport:
    """What a shared backend says of itself (``describe()``): one round trip per node.

    ``topology`` is ``single``, ``sentinel`` or ``cluster``; ``address`` the
    server writes go to now (the current master under Sentinel, the startup
    nodes of a cluster); ``writable`` is ``False`` when the server that takes
    writes is in fact a replica (a demoted master), so "reachable" is never
    mistaken for "working".
    """

    topology: str
    address: str
    version: str | None
    writable: bool
    nodes: tuple[NodeReport, ...]


@dataclass(frozen=True, slots=True)
class CacheHealth:
    """Whether the tiers work now (``TieredCache.health()``: one report of the shared tier).

    ``backend`` is ``"memory"`` (L1 only) or ``"redis"`` (L1 + L2).
    ``redis_reachable`` is ``None`` without Redis, and ``False`` without I/O
    while the breaker is open. ``latency_ms`` is the round trip of the
    report. ``redis_topology`` is ``single``, ``sentinel`` or ``cluster``;
    ``redis_writable`` is ``False`` when the server taking writes answers
    but as a replica; ``redis_nodes`` lists each server and its role;
    ``breaker_last_error`` is what the latest failure said.

    ``api.schemas.CacheStatus`` lists the same fields again on purpose: it is
    the HTTP contract, with descriptions and examples for the OpenAPI
    document, and this dataclass must not depend on the API layer.
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
    redis_topology: str | None = None
    redis_writable: bool | None = None
    redis_nodes: tuple[NodeReport, ...] | None = None
    breaker_last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)
