"""PostgreSQL next to SQLite: ingest of the real files, the version read, warm forecasts, lists.

Both stores are measured in one run on this machine. PostgreSQL is a server
started by the benchmark (``tests/support/postgres_server.py``) with its
durable defaults (fsync, synchronous commit and full-page writes on, as in
production; the test fixtures turn them off for speed), reached over TCP on
loopback. SQLite is a file in WAL mode with ``synchronous=NORMAL``, as salescast
runs it.

- Ingest: parse + validate + store of each real file into an empty store, in
  one transaction. PostgreSQL is measured twice: COPY (the default) and batched
  ``INSERT ... VALUES`` (SQLAlchemy's insertmanyvalues), to show which is faster.
- Version read: the one store read of a warm forecast, in alternating blocks:
  ``ModelRegistry.get_active_version`` (synchronous: what SQLite's forecasts
  use) on both stores, and on PostgreSQL the awaited, batched read its
  forecasts use (16 at once, per read).
- HTTP: a real ``salescast serve`` (1 worker, in-process cache) on each store,
  wrk alternating between them on a warm ``GET /products/{id}/forecast``; and
  ``GET /products`` with 5,000 products in the store, timed request by
  request: its default first page (100) and its largest (``?limit=1000``).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import workspace
from http_load import wait_until_answers, wrk
from report import Section, run_script
from sqlalchemy import insert, select
from tests.support.postgres_server import PostgresServer
from workspace import UvicornServer

from salescast.cache import TieredCache
from salescast.config import Settings
from salescast.service import SalescastService
from salescast.store import Database, SalesStore
from salescast.store.ingest import ColumnSpec, parse_csv
from salescast.store.product_listing import DEFAULT_LIMIT, MAX_LIMIT
from salescast.store.sales import BulkInsert
from salescast.store.schema import Base, SchemaInfo

FILES = [
    ("M5 store x dept", workspace.M5_CSV, workspace.M5_COLUMNS),
    ("store-item demand", workspace.STORE_ITEM_CSV, workspace.STORE_ITEM_COLUMNS),
]
# PostgreSQL's own defaults, stated so that a change of the fixtures' speed
# settings can never leak into the benchmark.
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
LISTED_PRODUCTS = 5_000
FORECAST = f"/products/{workspace.M5_PRODUCTS[0]}/forecast?horizon=30"
BIG_PAGE = f"/products?limit={MAX_LIMIT}"  # the largest page a client can ask for


@contextmanager
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer(settings=DURABLE) as server:
        yield server


def ingest_seconds(url: str, body: bytes, columns: ColumnSpec, method: BulkInsert) -> float:
    database = Database(url)
    store = SalesStore(database, bulk_insert=method)
    started = time.perf_counter()
    store.ingest(parse_csv(body, columns))
    seconds = time.perf_counter() - started
    database.dispose()
    return seconds


def measure_ingest(server: PostgresServer, *, quick: bool) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    for name, path, columns in FILES:
        body = path.read_bytes()
        rows = len(parse_csv(body, columns).rows)
        with tempfile.TemporaryDirectory() as folder:
            sqlite = ingest_seconds(f"sqlite:///{folder}/ingest.db", body, columns, "copy")
        copy = ingest_seconds(server.create_database(_fresh("copy")), body, columns, "copy")
        values = None
        if not quick or rows < 200_000:
            url = server.create_database(_fresh("values"))
            values = ingest_seconds(url, body, columns, "values")
        results.append(
            {"file": name, "rows": rows, "sqlite": sqlite, "copy": copy, "values": values}
        )
    return results


def copy_store(source_url: str, target_url: str) -> None:
    """Every row of every table, from one store into an empty one (schema made by Database,
    which also writes its one `schema_info` row: that table is not copied)."""
    source, target = Database(source_url), Database(target_url)
    with source.session() as reading, target.session() as writing:
        for table in Base.metadata.sorted_tables:
            if table.name == SchemaInfo.__tablename__:
                continue
            rows = [dict(row) for row in reading.execute(select(table)).mappings()]
            for start in range(0, len(rows), 5_000):
                writing.execute(insert(table), rows[start : start + 5_000])
    source.dispose()
    target.dispose()


def add_listed_products(url: str) -> None:
    """5,000 small products (28 days each), so that `GET /products` lists 5,000+ rows."""
    lines = ["product_id,date,quantity"]
    for number in range(LISTED_PRODUCTS):
        lines += [f"LIST{number:05d},2020-02-{day:02d},{day}" for day in range(1, 29)]
    database = Database(url)
    SalesStore(database).ingest(parse_csv("\n".join(lines).encode()))
    database.dispose()


def interleaved(
    candidates: dict[str, Callable[[], object]], *, blocks: int, calls: int
) -> dict[str, float]:
    """Median microseconds per call of each candidate over alternating blocks."""
    per_call: dict[str, list[float]] = {name: [] for name in candidates}
    for block in range(blocks):
        shift = block % len(candidates)
        order = list(candidates)[shift:] + list(candidates)[:shift]
        for name in order:
            call = candidates[name]
            started = time.perf_counter()
            for _ in range(calls):
                call()
            per_call[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: statistics.median(values) for name, values in per_call.items()}


def measure_version_read(urls: dict[str, str], *, quick: bool) -> dict[str, float]:
    services = {
        name: SalescastService(
            Settings(_env_file=None, database_url=url, warmup_on_startup=False),  # type: ignore[call-arg]
            cache=TieredCache(use_l1=False),
        )
        for name, url in urls.items()
    }
    product = workspace.M5_PRODUCTS[0]
    candidates: dict[str, Callable[[], object]] = {
        f"{name}, synchronous": (lambda s=service: s.registry.get_active_version(product))
        for name, service in services.items()
    }
    # What a warm forecast does on PostgreSQL: awaited reads, batched per event
    # loop. 16 at once (wrk's connections); one call here is one read of the 16.
    loop = asyncio.new_event_loop()
    registry = services["PostgreSQL"].registry

    async def sixteen() -> None:
        await asyncio.gather(*(registry.aget_active_version(product) for _ in range(16)))

    awaited_calls = 0

    def awaited() -> None:
        nonlocal awaited_calls
        awaited_calls += 1
        if awaited_calls % 16 == 1:
            loop.run_until_complete(sixteen())

    candidates["PostgreSQL, awaited, 16 at once (batched)"] = awaited
    try:
        return interleaved(candidates, blocks=5 if quick else 9, calls=512 if quick else 2_048)
    finally:
        # The batch task of the loop ends on its own loop, before the loop closes.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        for service in services.values():
            service.close()


def get_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    return (time.perf_counter() - started) * 1e3


def measure_http(urls: dict[str, str], *, quick: bool) -> dict[str, dict[str, float]]:
    env = {"SALESCAST_WARMUP_ON_STARTUP": "false"}
    servers = {
        name: UvicornServer({**env, "SALESCAST_DATABASE_URL": url}, workers=1)
        for name, url in urls.items()
    }
    results: dict[str, dict[str, float]] = {name: {} for name in urls}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    listing: dict[str, list[float]] = {name: [] for name in urls}
    full_page: dict[str, list[float]] = {name: [] for name in urls}
    try:
        for server in servers.values():
            server.start()
            wait_until_answers(server.url + FORECAST)
            wrk(server.url + FORECAST, 1)  # warm the worker's L1 and connections
        blocks = 3 if quick else 5
        for block in range(blocks):
            order = list(servers)[block % 2 :] + list(servers)[: block % 2]
            for name in order:
                runs[name].append(wrk(servers[name].url + FORECAST, 3 if quick else 8))
                listing[name] += [get_ms(servers[name].url + "/products") for _ in range(3)]
                full_page[name] += [get_ms(servers[name].url + BIG_PAGE) for _ in range(3)]
    finally:
        for server in servers.values():
            server.stop()
    for name in urls:
        for key in runs[name][0]:
            results[name][key] = statistics.median(run[key] for run in runs[name])
        results[name]["products_ms"] = statistics.median(listing[name])
        results[name]["big_page_ms"] = statistics.median(full_page[name])
    return results


def build(quick: bool, command: str) -> Section:
    section = Section("Store: PostgreSQL next to SQLite", command)
    section.text(__doc__.split("\n\n", 1)[1].replace("\n", " ").replace("  ", " ").strip())
    with postgres() as server, tempfile.TemporaryDirectory() as folder:
        ingest = measure_ingest(server, quick=quick)
        sqlite_url = f"sqlite:///{folder}/m5.db"
        copy_store(f"sqlite:///{workspace.ensure_m5_store()}", sqlite_url)
        postgres_url = server.create_database("served")
        copy_store(sqlite_url, postgres_url)
        for url in (sqlite_url, postgres_url):
            add_listed_products(url)
        urls = {"SQLite": sqlite_url, "PostgreSQL": postgres_url}
        reads = measure_version_read(urls, quick=quick)
        http = measure_http(urls, quick=quick)
    describe(section, ingest, reads, http)
    return section


def describe(
    section: Section,
    ingest: list[dict[str, object]],
    reads: dict[str, float],
    http: dict[str, dict[str, float]],
) -> None:
    rows: list[list[object]] = []
    targets: list[list[str]] = []
    for result in ingest:
        sqlite, copy, values = result["sqlite"], result["copy"], result["values"]
        assert isinstance(sqlite, float)
        assert isinstance(copy, float)
        shown_values = f"{values:.2f}" if isinstance(values, float) else "not run (--quick)"
        ratio = copy / sqlite
        timings = [f"{sqlite:.2f}", f"{copy:.2f}", shown_values, f"{ratio:.2f}x"]
        rows.append([result["file"], f"{result['rows']:,}", *timings])
        what = f"ingest {result['file']}: PostgreSQL within 2x of SQLite"
        targets.append(section.target(what, f"{ratio:.2f}x", ratio <= 2.0))
    section.text("### Ingest (parse + validate + store, seconds)")
    section.table(
        ["file", "rows", "SQLite", "PostgreSQL COPY", "PostgreSQL INSERT VALUES", "COPY / SQLite"],
        rows,
    )
    section.text("### The version read of a warm forecast")
    section.table(
        ["store", "us per read"], [[name, f"{value:.1f}"] for name, value in reads.items()]
    )
    section.text(
        f"### HTTP: warm `GET {FORECAST}` (wrk, 16 connections, 1 worker), "
        f"`GET /products` with {LISTED_PRODUCTS:,}+ products"
    )
    section.table(
        ["store", "forecast req/s", "p50 ms", "p99 ms", "errors",
         f"GET /products ms (first {DEFAULT_LIMIT})", f"GET {BIG_PAGE} ms"],
        [
            [name, f"{r['rps']:,.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
             f"{r['errors']:.0f}", f"{r['products_ms']:.0f}", f"{r['big_page_ms']:.0f}"]
            for name, r in http.items()
        ],
    )  # fmt: skip
    share = http["PostgreSQL"]["rps"] / http["SQLite"]["rps"]
    what = "warm forecast: PostgreSQL >= 0.9x SQLite's req/s"
    targets.append(section.target(what, f"{share:.2f}x", share >= 0.9))
    section.text("### Targets")
    section.table(["target", "measured", "verdict"], targets)


def _fresh(prefix: str) -> str:
    return f"{prefix}_{time.time_ns()}"


if __name__ == "__main__":
    sys.exit(run_script("store_speed.py", build))
