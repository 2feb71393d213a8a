"""The claims table: computed vs L2 hit vs L1 hit, per call and over HTTP, on real data.

Per call goes through ``SalescastService`` (``load_model``, ``predict_sales``,
``get_history``) with three caches side by side over the same trained M5
store: none (every call computes), Redis only (every call is an L2 hit) and
the normal L1 + Redis (every call is an L1 hit). HTTP goes through two real
``salescast serve`` processes sharing one Redis: a normal one (MISS and
HIT-L1) and one whose L1 holds nothing (``CACHE_L1_MAX_BYTES=1``: every hit
is HIT-L2). A MISS over HTTP asks a new key each time (another interval or
start date), so the prediction is computed but the model comes from L1.
"""

from __future__ import annotations

import datetime as dt
import http.client
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import workspace
from interleave import Timing, calls_for, fmt_seconds, ratio, time_blocks
from report import Section, run_script
from workspace import UvicornServer

from salescast.service import SalescastService

KINDS = ("computed", "l2", "l1")
LABELS = ("computed", "L2 hit", "L1 hit")
OPERATIONS: dict[str, Callable[[SalescastService, str], object]] = {
    "model load": lambda service, product: service.load_model(product),
    "prediction": lambda service, product: service.predict_sales(product, 30),
    "data query": lambda service, product: service.get_history(product),
}
# What the issue claims per operation: computed, cached, ratio.
CLAIMED = {
    "model load": ("2-5 s", "50-100 ms", "20-100x"),
    "prediction": ("1-3 s", "10-20 ms", "50-300x"),
    "data query": ("0.5-2 s", "5-10 ms", "50-400x (implied)"),
}


def measure_service(
    database: Path, product: str, redis_url: str, *, operations: list[str], quick: bool
) -> dict[str, dict[str, Timing]]:
    """Per operation, per cache kind: seconds per call, interleaved in blocks."""
    services = {kind: workspace.service_with(kind, database, redis_url) for kind in KINDS}
    results: dict[str, dict[str, Timing]] = {}
    try:
        for operation in operations:
            run = OPERATIONS[operation]
            candidates = {
                kind: (lambda s=service, run=run: run(s, product))
                for kind, service in services.items()
            }
            calls = calls_for(candidates, budget_seconds=0.15 if quick else 0.4)
            results[operation] = time_blocks(candidates, blocks=3 if quick else 7, calls=calls)
    finally:
        for service in services.values():
            service.close()
    return results


def service_rows(dataset: str, results: dict[str, dict[str, Timing]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for operation, timings in results.items():
        computed, l2, l1 = (timings[kind].median for kind in KINDS)
        claimed = CLAIMED[operation]
        rows.append(
            [
                f"{operation} ({dataset})",
                fmt_seconds(computed),
                fmt_seconds(l2),
                fmt_seconds(l1),
                ratio(computed, l2),
                ratio(computed, l1),
                f"{claimed[0]} → {claimed[1]} ({claimed[2]})",
            ]
        )
    return rows


class HttpProbe:
    """One keep-alive connection to a server; counts answers whose X-Cache was unexpected."""

    def __init__(self, server: UvicornServer) -> None:
        self.connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
        self.unexpected = 0

    def get(self, path: str, expect: str | None) -> None:
        self.connection.request("GET", path)
        response = response_of(self.connection)
        if expect is not None and response.getheader("X-Cache") != expect:
            self.unexpected += 1

    def close(self) -> None:
        self.connection.close()


def response_of(connection: http.client.HTTPConnection) -> http.client.HTTPResponse:
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}")
    return response


def http_candidates(
    normal: HttpProbe, l2_only: HttpProbe, product: str
) -> dict[str, dict[str, Callable[[], None]]]:
    """Per endpoint: MISS (a new key each call), HIT-L2 and HIT-L1."""
    intervals = (f"{0.5 + k * 1e-5:.5f}" for k in itertools.count())
    starts = (dt.date(2010, 12, 31) - dt.timedelta(days=k) for k in itertools.count())
    forecast = f"/products/{product}/forecast?horizon=30"
    sales = f"/products/{product}/sales"
    return {
        "prediction": {
            "computed": lambda: normal.get(f"{forecast}&interval={next(intervals)}", "MISS"),
            "l2": lambda: l2_only.get(forecast, "HIT-L2"),
            "l1": lambda: normal.get(forecast, "HIT-L1"),
        },
        "data query": {
            "computed": lambda: normal.get(f"{sales}?start={next(starts)}", None),
            "l2": lambda: l2_only.get(sales, None),
            "l1": lambda: normal.get(sales, None),
        },
    }


def server_env(database: Path, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "SALESCAST_DATABASE_URL": f"sqlite:///{database}",
        "SALESCAST_REDIS_URL": redis_url,
        "SALESCAST_WARMUP_ON_STARTUP": "false",
        **extra,
    }


def measure_http(
    database: Path, product: str, redis_url: str, *, quick: bool
) -> tuple[dict[str, dict[str, Timing]], int]:
    """Per endpoint, per kind: seconds per request; and how many X-Cache headers surprised."""
    env = server_env(database, redis_url)
    with (
        UvicornServer(env) as normal_server,
        UvicornServer({**env, "SALESCAST_CACHE_L1_MAX_BYTES": "1"}) as l2_server,
    ):
        normal, l2_only = HttpProbe(normal_server), HttpProbe(l2_server)
        results: dict[str, dict[str, Timing]] = {}
        for endpoint, candidates in http_candidates(normal, l2_only, product).items():
            calls = calls_for(candidates, budget_seconds=0.15 if quick else 0.4)
            normal.unexpected = l2_only.unexpected = 0  # calibration's first calls fill the cache
            results[endpoint] = time_blocks(candidates, blocks=3 if quick else 7, calls=calls)
        unexpected = normal.unexpected + l2_only.unexpected
        normal.close()
        l2_only.close()
    return results, unexpected


def target_rows(section: Section, service: dict[str, dict[str, Timing]]) -> list[list[str]]:
    prediction, model = service["prediction"], service["model load"]
    l1_ratio = prediction["computed"].median / prediction["l1"].median
    l2_ratio = prediction["computed"].median / prediction["l2"].median
    model_l2 = model["l2"].median
    return [
        section.target(
            "prediction, computed / L1 hit >= 1000x", f"{l1_ratio:,.0f}x", l1_ratio >= 1000
        ),
        section.target(
            "prediction, computed / L2 hit >= 100x", f"{l2_ratio:,.0f}x", l2_ratio >= 100
        ),
        section.target("model load from L2 <= 10 ms", fmt_seconds(model_l2), model_l2 <= 0.010),
        section.target(
            "model load from L2 within the claimed 50-100 ms (or faster)",
            fmt_seconds(model_l2),
            model_l2 <= 0.100,
        ),
    ]


def build(quick: bool, command: str) -> Section:
    section = Section("Claims: computed vs L2 hit vs L1 hit", command)
    m5 = workspace.ensure_m5_store()
    store_item = workspace.ensure_store_item_store()
    product = workspace.M5_PRODUCTS[0]
    with workspace.redis_server() as redis:
        m5_results = measure_service(
            m5, product, redis.url, operations=list(OPERATIONS), quick=quick
        )
        scale = measure_service(
            store_item, "1-1", redis.url, operations=["data query"], quick=quick
        )
        http_results, unexpected = measure_http(m5, product, redis.url, quick=quick)
    describe(section, product, quick)
    header = ["operation", "computed", "L2 hit", "L1 hit", "computed / L2", "computed / L1"]
    section.text("### Per call, through `SalescastService`")
    section.table(
        [*header, "claimed"],
        service_rows(f"M5 {product}", m5_results) + service_rows("store-item 1-1", scale),
    )
    section.text(f"### Over HTTP (one keep-alive client; X-Cache surprises: {unexpected})")
    section.table(header, [row[:-1] for row in service_rows(f"GET, M5 {product}", http_results)])
    section.text("### Targets")
    section.table(["target", "measured", "verdict"], target_rows(section, m5_results))
    section.charts["claims"] = chart_data(m5_results, http_results)
    return section


def describe(section: Section, product: str, quick: bool) -> None:
    blocks = 3 if quick else 7
    section.text(
        f"Median over {blocks} interleaved blocks of the mean time per call. Product "
        f"`{product}` (M5, about 5 years of daily sales, Prophet with "
        "`UNCERTAINTY_SAMPLES=1000`); store-item `1-1` for the history query on the "
        "913,000-row store. Computed = a service whose cache has no tier, so a prediction "
        "also decodes the model. Over HTTP a MISS is a new cache key each request (the model "
        "stays in L1), the L2 column is a server whose L1 holds nothing "
        "(`SALESCAST_CACHE_L1_MAX_BYTES=1`). There is no HTTP endpoint that only loads a model."
    )


def chart_data(*groups: dict[str, dict[str, Timing]]) -> dict[str, dict[str, float]]:
    data: dict[str, dict[str, float]] = {}
    for prefix, results in zip(("call", "HTTP"), groups, strict=True):
        for operation, timings in results.items():
            data[f"{operation} ({prefix})"] = {
                label: timings[kind].median for kind, label in zip(KINDS, LABELS, strict=True)
            }
    return data


if __name__ == "__main__":
    sys.exit(run_script("claims.py", build))
