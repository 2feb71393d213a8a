"""Prometheus metrics: HTTP traffic and the cache's counters, safe with several workers.

With one process the metrics live in a registry of this app. With several
uvicorn workers, `salescast serve` points PROMETHEUS_MULTIPROC_DIR at a fresh
folder before the workers start; every worker then writes its values there
and `/metrics`, whichever worker answers, sums all of them. Cache counters
are copied from the cache's own statistics as deltas (at each scrape, and
every few seconds in the background so idle workers' counts are current).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from salescast.api.training_metrics import TrainingMetrics
from salescast.cache import CacheStats
from salescast.forecasting.registry import ModelCounts
from salescast.store.jobs import JobStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TIER_EVENTS = ("hits", "misses", "sets", "errors", "skipped", "evictions")
_TIER_BYTES = ("bytes_read", "bytes_written")
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """This app's metric objects and the cache-statistics bridge."""

    def __init__(self, cache_stats: Callable[[], CacheStats], *, sync_seconds: float = 5.0) -> None:
        self.registry = CollectorRegistry()
        self._cache_stats = cache_stats
        self._seen: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        self.http_requests = Counter(
            "salescast_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "salescast_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache_events = Counter(
            "salescast_cache_events",
            "Cache operations per namespace and tier (hits, misses, sets, errors, ...).",
            ["namespace", "tier", "event"],
            registry=self.registry,
        )
        self.cache_bytes = Counter(
            "salescast_cache_bytes",
            "Bytes read from and written to each cache tier.",
            ["namespace", "tier", "direction"],
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "salescast_cache_lookups",
            "Lookups that no tier served (miss) and computations that ran (computed).",
            ["namespace", "outcome"],
            registry=self.registry,
        )
        self.l1_bytes = Gauge(
            "salescast_cache_l1_bytes",
            "Bytes held by the in-process cache (summed over live workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.l1_entries = Gauge(
            "salescast_cache_l1_entries",
            "Entries held by the in-process cache (summed over live workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.cache_latency = Gauge(
            "salescast_cache_latency_seconds",
            "Latency percentiles of each tier's reads over the last lookups (worst worker).",
            ["namespace", "tier", "quantile"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.training: TrainingMetrics | None = None
        self.breaker_open = Gauge(
            "salescast_cache_breaker_open",
            "1 while the Redis circuit breaker of some worker is not closed.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if multiprocess_enabled():
            self._thread = threading.Thread(
                target=self._sync_loop, args=(sync_seconds,), name="metrics-sync", daemon=True
            )
            self._thread.start()

    def add_training(self, *, model_counts: Callable[[], ModelCounts], jobs: JobStore) -> None:
        """Also export the training and model series (``TrainingMetrics``), read from the store."""
        self.training = TrainingMetrics(self.registry, model_counts=model_counts, jobs=jobs)

    def close(self) -> None:
        self._stop.set()

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker (or of this process)."""
        self.sync()
        if not multiprocess_enabled():
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(registry)

    def sync(self) -> None:
        """Copy what the cache counted since the last sync into the Prometheus counters."""
        stats = self._cache_stats()
        with self._lock:
            for name, ns in stats.namespaces.items():
                for tier_name, tier in (("l1", ns.l1), ("l2", ns.l2)):
                    values = asdict(tier)
                    for event in _TIER_EVENTS:
                        self._advance(
                            self.cache_events.labels(name, tier_name, event),
                            ("event", name, tier_name, event),
                            values[event],
                        )
                    latency = tier.latency
                    if latency.count:
                        for quantile, millis in (
                            ("0.5", latency.p50_ms),
                            ("0.95", latency.p95_ms),
                            ("0.99", latency.p99_ms),
                        ):
                            self.cache_latency.labels(name, tier_name, quantile).set(millis / 1000)
                    for direction in _TIER_BYTES:
                        self._advance(
                            self.cache_bytes.labels(
                                name, tier_name, direction.removeprefix("bytes_")
                            ),
                            ("bytes", name, tier_name, direction),
                            values[direction],
                        )
                self._advance(self.cache_lookups.labels(name, "miss"), ("miss", name), ns.misses)
                self._advance(
                    self.cache_lookups.labels(name, "computed"), ("computed", name), ns.computations
                )
            if stats.l1 is not None:
                self.l1_bytes.set(stats.l1.bytes)
                self.l1_entries.set(stats.l1.entries)
            closed = stats.breaker is None or stats.breaker.state == "closed"
            self.breaker_open.set(0 if closed else 1)
        if self.training is not None:
            self.training.sync()

    def _advance(self, counter: Any, key: tuple[str, ...], total: float) -> None:
        delta = total - self._seen.get(key, 0)
        if delta > 0:
            counter.inc(delta)
        self._seen[key] = total

    def _sync_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.sync()

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """ASGI middleware counting requests by route template (not raw path: bounded labels)."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def record_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, record_status)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", "unmatched")
                labels = (scope.get("method", ""), template, status)
                children = series.get(labels)
                if children is None:
                    children = series[labels] = self._request_series(*labels)
                children[0].inc()
                children[1].observe(time.perf_counter() - started)

        # The labelled children per (method, route template, status): looked up
        # once, not through ``labels()`` on every request. Bounded, since route
        # templates and status codes are.
        series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        return measured

    def _request_series(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        return (
            self.http_requests.labels(method, template, str(status)),
            self.http_latency.labels(method, template),
        )
