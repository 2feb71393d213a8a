"""Hit rates of a Zipf(1.1) request stream over 1,000 products, in simulated time.

``TieredCache`` (L1 only) and its ``MemoryBackend`` run on an injected clock,
so a simulated day takes seconds. The computations are cheap fakes; what is
real is the cache: keys, versions, lifetimes (the service's defaults: idle
lifetimes that a hit renews, model / prediction / data 24 h each, within a
7-day maximum; decision 0011), tag invalidation. The request flow copies
``SalescastService``: a forecast looks up ``prediction`` under the active
model version and, only on a miss, ``model``; a history request looks up
``data`` under the data version. Every product is retrained once a day, at
its own time of day (new model version, new data version, its tag
invalidated, as ``train_product`` and an ingest do), and the new model is
then written through to ``model`` under the new version, as the service does
after every retrain (the default forecast is not precomputed). 80 % of
requests are forecasts, 20 % history.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
import workspace
from report import Section, run_script

from salescast.cache import IdleTTL, MemoryBackend, RedisBackend, TieredCache, product_tag
from salescast.config import Settings

PRODUCTS = 1000
DAY = 86_400.0
_DEFAULTS = Settings.model_construct()  # the defaults, without reading the environment
# The service's TTLs now: idle lifetimes (a hit renews the entry) ...
IDLE_TTL = {
    "model": IdleTTL(_DEFAULTS.cache_ttl_model_seconds),
    "prediction": IdleTTL(_DEFAULTS.cache_ttl_prediction_seconds),
    "data": IdleTTL(_DEFAULTS.cache_ttl_data_seconds),
}
# ... and before decision 0011: fixed TTLs, the defaults of that time.
FIXED_TTL = {"model": 21_600.0, "prediction": 3_600.0, "data": 600.0}
# A model entry: real ones are larger, but what counts in Redis is that models
# dominate its memory, as they do in the service.
MODEL = b"m" * 8192


@dataclass
class World:
    """Simulated time, versions and the cache under test.

    ``ttl``: the TTL of each namespace. ``redis_url``: the cache is Redis
    alone (no L1), to show what a capped Redis's eviction does to the hit rate.
    """

    ttl: dict[str, float]
    redis_url: str | None = None
    now: float = 0.0
    model_versions: list[int] = field(default_factory=lambda: [1] * PRODUCTS)
    data_versions: list[int] = field(default_factory=lambda: [1] * PRODUCTS)
    next_retrain: list[float] = field(
        default_factory=lambda: [DAY * (k + 0.5) / PRODUCTS for k in range(PRODUCTS)]
    )
    cache: TieredCache = field(init=False)

    def __post_init__(self) -> None:
        lifetimes: dict[str, Any] = {
            "clock": self.clock,
            "wall_clock": self.clock,
            "max_lifetime": _DEFAULTS.cache_max_lifetime_seconds,
            "stale_window": _DEFAULTS.cache_stale_seconds,
        }
        if self.redis_url is None:
            l1 = MemoryBackend(max_bytes=1 << 30, max_entries=100_000, clock=self.clock)
            self.cache = TieredCache(l1=l1, prefix="sim", **lifetimes)
        else:
            # Redis's own TTLs run in real time, minutes for a simulated day:
            # nothing expires there, only the eviction of a full Redis counts.
            self.cache = TieredCache(
                l2=RedisBackend(self.redis_url),
                use_l1=False,
                prefix="sim",
                generation_ttl=1e12,  # one process: its own tag bumps are all there are
                **lifetimes,
            )
        # Every product was trained before the simulation starts, and its
        # model written through then, as after any training.
        for product in range(PRODUCTS):
            self.write_through(product)

    def clock(self) -> float:
        return self.now

    def retrain_due(self) -> None:
        for product, due in enumerate(self.next_retrain):
            if due <= self.now:
                self.model_versions[product] += 1
                self.data_versions[product] += 1
                self.next_retrain[product] = due + DAY
                self.cache.invalidate_tag(product_tag(str(product)))
                # Written through after the invalidation, as the service does:
                # before it, the new tag generation would make it unreachable.
                self.write_through(product)

    def write_through(self, product: int) -> None:
        self.cache.set(
            "model",
            model_key(product, self.model_versions[product]),
            MODEL,
            ttl=self.ttl["model"],
            tags=[product_tag(str(product))],
        )


def forecast(world: World, product: int) -> None:
    version = world.model_versions[product]
    tags = [product_tag(str(product))]

    def predict() -> list[float]:
        world.cache.get_or_compute(
            "model", model_key(product, version), lambda: MODEL, ttl=world.ttl["model"], tags=tags
        )
        return [float(product)] * 30

    key = (product, version, 30, 0.8)
    world.cache.get_or_compute("prediction", key, predict, ttl=world.ttl["prediction"], tags=tags)


def model_key(product: int, version: int) -> tuple[int, int]:
    return (product, version)


def history(world: World, product: int) -> None:
    key = (product, world.data_versions[product])
    tags = [product_tag(str(product))]
    world.cache.get_or_compute("data", key, lambda: [1.0] * 60, ttl=world.ttl["data"], tags=tags)


def simulate(
    rate: float,
    hours: float,
    seed: int = 11,
    *,
    zipf: float = 1.1,
    ttl: dict[str, float] | None = None,
    redis_url: str | None = None,
) -> dict[str, float]:
    """Hit rate per namespace after the first simulated hour (the cold start)."""
    world = World(ttl=IDLE_TTL if ttl is None else ttl, redis_url=redis_url)
    try:
        return _run(world, rate, hours, seed, zipf)
    finally:
        world.cache.close()


def _run(world: World, rate: float, hours: float, seed: int, zipf: float) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, PRODUCTS + 1) ** zipf
    count = int(rate * hours * 3600)
    products = rng.choice(PRODUCTS, size=count, p=weights / weights.sum())
    is_forecast = rng.random(count) < 0.8
    warm: dict[str, tuple[int, int]] = {}
    for n in range(count):
        world.now = n / rate
        if n % max(1, int(rate * 60)) == 0:  # retrains are checked once a simulated minute
            world.retrain_due()
        if not warm and world.now >= 3600:
            warm = counts(world.cache)
        (forecast if is_forecast[n] else history)(world, int(products[n]))
    final = counts(world.cache)
    return {
        name: (hits - warm.get(name, (0, 0))[0]) / max(1, total - warm.get(name, (0, 0))[1])
        for name, (hits, total) in final.items()
    }


def counts(cache: TieredCache) -> dict[str, tuple[int, int]]:
    """Per namespace: (hits, lookups) so far."""
    return {
        name: (stats.hits, stats.hits + stats.misses)
        for name, stats in cache.stats().namespaces.items()
    }


TARGETS = {  # (namespace, requests/s) -> the goal
    ("model", 1.0): 0.99,
    ("model", 10.0): 0.99,
    ("model", 50.0): 0.99,
    ("prediction", 1.0): 0.95,
    ("prediction", 10.0): 0.99,
    ("prediction", 50.0): 0.99,
    ("data", 1.0): 0.90,
}


def build(quick: bool, command: str) -> Section:
    section = Section("Hit rates: Zipf traffic over 1,000 products, simulated time", command)
    hours = 6.0 if quick else 24.0
    rates = (1.0, 10.0) if quick else (1.0, 10.0, 50.0)
    section.text(
        __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        f"{hours:g} simulated hours per run; the first hour is left out (cold cache). "
        "Each rate runs twice side by side: with the idle lifetimes of today and with the "
        f"fixed TTLs of before (model {FIXED_TTL['model']:g} s, prediction "
        f"{FIXED_TTL['prediction']:g} s, data {FIXED_TTL['data']:g} s).",
    )
    rows: list[list[object]] = []
    chart: dict[str, dict[str, float]] = {}
    for rate in rates:
        idle = simulate(rate, hours)
        fixed = simulate(rate, hours, ttl=FIXED_TTL)
        chart[f"{rate:g} req/s"] = idle
        for name in ("model", "prediction", "data"):
            goal = TARGETS.get((name, rate))
            met = (
                ""
                if goal is None
                else section.target(
                    f"Zipf 1.1, {rate:g} req/s: {name} hit rate >= {goal:.0%}",
                    f"{idle[name]:.1%}",
                    idle[name] >= goal,
                )[2]
            )
            rows.append([f"{rate:g}", name, f"{fixed[name]:.1%}", f"{idle[name]:.1%}", met])
    section.table(
        ["requests/s", "namespace", "fixed TTLs (before)", "idle lifetimes", "target"], rows
    )
    section.charts["hit_rates"] = chart

    flat = [
        [f"{rate:g}", *(f"{v:.1%}" for v in _ordered(simulate(rate, hours, zipf=0.8)))]
        for rate in rates
    ]
    section.text("Flatter traffic, Zipf 0.8, idle lifetimes (no target):")
    section.table(["requests/s", "model", "prediction", "data"], flat)

    section.text(_capped_redis_text())
    section.table(["Redis", "requests/s", "model", "prediction", "data"], _capped_redis(hours))
    return section


def _ordered(rates: dict[str, float]) -> list[float]:
    return [rates["model"], rates["prediction"], rates["data"]]


def _capped_redis_text() -> str:
    return (
        "Redis alone (no L1), 1 req/s, Zipf 1.1: first with no memory limit, then with "
        "`maxmemory` at a quarter of what the first run ended up using above an empty "
        "server, `maxmemory-policy allkeys-lru`. Entries of superseded versions are "
        "unreachable and are the first that LRU evicts; below the live working set, "
        "evictions cost hits."
    )


def _capped_redis(hours: float) -> list[list[object]]:
    rows: list[list[object]] = []
    with workspace.redis_server() as server:
        client = redis.Redis.from_url(server.url)
        empty = int(client.info("memory")["used_memory"])
        uncapped = simulate(1.0, hours, redis_url=server.url)
        used = int(client.info("memory")["used_memory"]) - empty
        rows.append(["no limit", "1", *(f"{v:.1%}" for v in _ordered(uncapped))])
        client.flushall()
        cap = empty + used // 4
        client.config_set("maxmemory", cap)
        client.config_set("maxmemory-policy", "allkeys-lru")
        capped = simulate(1.0, hours, redis_url=server.url)
        evicted = int(client.info("stats")["evicted_keys"])
        rows.append(
            [
                f"maxmemory {cap / 1e6:.1f} MB ({used / 4e6:.1f} MB for entries), "
                f"{evicted:,} keys evicted",
                "1",
                *(f"{v:.1%}" for v in _ordered(capped)),
            ]
        )
        client.close()
    return rows


if __name__ == "__main__":
    sys.exit(run_script("hit_rates.py", build))
