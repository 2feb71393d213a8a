"""Hit rates of a Zipf(1.1) request stream over 1,000 products, in simulated time.

``TieredCache`` (L1 only) and its ``MemoryBackend`` run on an injected clock,
so a simulated day takes seconds. The computations are cheap fakes; what is
real is the cache: keys, versions, TTLs (the service's defaults: model 6 h,
prediction 1 h, data 600 s), tag invalidation. The request flow copies
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

import numpy as np
from report import Section, run_script

from salescast.cache import MemoryBackend, TieredCache, product_tag

PRODUCTS = 1000
DAY = 86_400.0
TTL = {"model": 21_600.0, "prediction": 3_600.0, "data": 600.0}
MODEL = b"m" * 64


@dataclass
class World:
    """Simulated time, versions and the cache under test."""

    now: float = 0.0
    model_versions: list[int] = field(default_factory=lambda: [1] * PRODUCTS)
    data_versions: list[int] = field(default_factory=lambda: [1] * PRODUCTS)
    next_retrain: list[float] = field(
        default_factory=lambda: [DAY * (k + 0.5) / PRODUCTS for k in range(PRODUCTS)]
    )
    cache: TieredCache = field(init=False)

    def __post_init__(self) -> None:
        l1 = MemoryBackend(max_bytes=1 << 30, max_entries=100_000, clock=self.clock)
        self.cache = TieredCache(l1=l1, prefix="sim", clock=self.clock)

    def clock(self) -> float:
        return self.now

    def retrain_due(self) -> None:
        for product, due in enumerate(self.next_retrain):
            if due <= self.now:
                self.model_versions[product] += 1
                self.data_versions[product] += 1
                self.next_retrain[product] = due + DAY
                tag = product_tag(str(product))
                self.cache.invalidate_tag(tag)
                # Written through after the invalidation, as the service does:
                # before it, the new tag generation would make it unreachable.
                self.cache.set(
                    "model",
                    model_key(product, self.model_versions[product]),
                    MODEL,
                    ttl=TTL["model"],
                    tags=[tag],
                )


def forecast(world: World, product: int) -> None:
    version = world.model_versions[product]
    tags = [product_tag(str(product))]

    def predict() -> list[float]:
        world.cache.get_or_compute(
            "model", model_key(product, version), lambda: MODEL, ttl=TTL["model"], tags=tags
        )
        return [float(product)] * 30

    key = (product, version, 30, 0.8)
    world.cache.get_or_compute("prediction", key, predict, ttl=TTL["prediction"], tags=tags)


def model_key(product: int, version: int) -> tuple[int, int]:
    return (product, version)


def history(world: World, product: int) -> None:
    key = (product, world.data_versions[product])
    tags = [product_tag(str(product))]
    world.cache.get_or_compute("data", key, lambda: [1.0] * 60, ttl=TTL["data"], tags=tags)


def simulate(rate: float, hours: float, seed: int = 11) -> dict[str, float]:
    """Hit rate per namespace after the first simulated hour (the cold start)."""
    world = World()
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, PRODUCTS + 1) ** 1.1
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


def build(quick: bool, command: str) -> Section:
    section = Section("Hit rates: Zipf(1.1) over 1,000 products, simulated time", command)
    hours = 6.0 if quick else 24.0
    rates = (1.0, 10.0) if quick else (1.0, 10.0, 50.0)
    section.text(
        __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        f"{hours:g} simulated hours per rate; the first hour is left out (cold cache).",
    )
    rows: list[list[object]] = []
    chart: dict[str, dict[str, float]] = {}
    for rate in rates:
        rates_by_namespace = simulate(rate, hours)
        chart[f"{rate:g} req/s"] = rates_by_namespace
        prediction, model = rates_by_namespace["prediction"], rates_by_namespace["model"]
        rows.append(
            [
                f"{rate:g}",
                f"{prediction:.1%}",
                f"{model:.1%}",
                f"{rates_by_namespace['data']:.1%}",
                section.target(
                    f"{rate:g} req/s: prediction hit rate >= 95 %",
                    f"{prediction:.1%}",
                    prediction >= 0.95,
                )[2],
                section.target(
                    f"{rate:g} req/s: model hit rate >= 99 %", f"{model:.1%}", model >= 0.99
                )[2],
            ]
        )
    section.table(
        ["requests/s", "prediction", "model", "data", "prediction ≥ 95 %", "model ≥ 99 %"], rows
    )
    section.charts["hit_rates"] = chart
    return section


if __name__ == "__main__":
    sys.exit(run_script("hit_rates.py", build))
