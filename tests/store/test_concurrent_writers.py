"""Writers in separate processes at once, on both stores: no crash, no lost or doubled rows.

Each case runs its two writers in two worker processes that wait on one barrier
and then call the store together, a few rounds over fresh products, so the
transactions really overlap (before the fix these cases failed in most rounds:
UniqueViolation on products or sales, DeadlockDetected, "database is locked").
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from salescast.config import Settings
from salescast.service import SalescastService
from salescast.store import Database, SalesStore
from salescast.store.ingest import ColumnSpec, IngestError, parse_csv
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.reliability.servers import server_env
from tests.support.uvicorn_server import UvicornServer

ROUNDS = 3
START = dt.date(2020, 1, 1)

_services: dict[str, SalescastService] = {}


def _service(url: str) -> SalescastService:
    # One service per store and worker process, kept between tasks: building
    # one per call would make the first statement of each writer late.
    if url not in _services:
        _services[url] = SalescastService(make_settings(url))
    return _services[url]


def ingest_in_worker(url: str, body: bytes, mode: str, barrier: Any) -> tuple[str, Any]:
    """Run in a worker process: wait for the other writer, then ingest."""
    service = _service(url)
    barrier.wait(timeout=30)
    try:
        result = service.ingest_csv(body, columns=ColumnSpec(), mode=mode)  # type: ignore[arg-type]
    except IngestError as exc:
        return "rejected", [(p.line, p.reason) for p in exc.problems]
    return "stored", result.data_versions


def train_in_worker(url: str, product_id: str, barrier: Any) -> tuple[str, Any]:
    service = _service(url)
    barrier.wait(timeout=30)
    [summary] = service.train_products([product_id])
    return ("trained", summary.version) if summary.error is None else ("failed", summary.error)


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    context = mp.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(2, mp_context=context) as pool:
        yield pool, manager


def csv_of(products: list[str], days: range, quantity: float) -> bytes:
    rows = [
        f"{p},{(START + dt.timedelta(days=d)).isoformat()},{quantity}"
        for p in products
        for d in days
    ]
    return ("product_id,date,quantity\n" + "\n".join(rows) + "\n").encode()


def together(workers: tuple[ProcessPoolExecutor, Any], *calls: tuple[Any, ...]) -> list[Any]:
    pool, manager = workers
    barrier = manager.Barrier(len(calls))
    futures: list[Future[Any]] = [pool.submit(*call, barrier) for call in calls]
    return [future.result(timeout=120) for future in futures]


@pytest.fixture
def store(database_url: str) -> Iterator[SalesStore]:
    database = Database(database_url)  # creates the schema before the workers meet it
    yield SalesStore(database)
    database.dispose()


def fresh(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_two_first_uploads_of_one_new_product_store_it_once(
    workers: tuple[ProcessPoolExecutor, Any], store: SalesStore, database_url: str
) -> None:
    for _ in range(ROUNDS):
        product = fresh("NEW")
        body = csv_of([product], range(28), 5.0)

        outcomes = together(
            workers,
            (ingest_in_worker, database_url, body, "append"),
            (ingest_in_worker, database_url, body, "append"),
        )

        kinds = sorted(kind for kind, _ in outcomes)
        assert kinds == ["rejected", "stored"], outcomes
        [problems] = [detail for kind, detail in outcomes if kind == "rejected"]
        assert [line for line, _ in problems] == list(range(2, 22))  # the first 20 listed
        assert all("already has sales" in reason for _, reason in problems)
        assert len(store.get_history(product)) == 28
        assert store.get_data_version(product) == 1


def test_two_appends_of_the_same_days_store_one_and_reject_the_other(
    workers: tuple[ProcessPoolExecutor, Any], store: SalesStore, database_url: str
) -> None:
    for _ in range(ROUNDS):
        product = fresh("OLD")
        store.ingest(parse_csv(csv_of([product], range(10), 1.0)))
        body = csv_of([product], range(10, 20), 2.0)

        outcomes = together(
            workers,
            (ingest_in_worker, database_url, body, "append"),
            (ingest_in_worker, database_url, body, "append"),
        )

        assert sorted(kind for kind, _ in outcomes) == ["rejected", "stored"], outcomes
        assert len(store.get_history(product)) == 20
        assert store.get_data_version(product) == 2


def test_two_replaces_touching_two_products_in_opposite_order_both_succeed(
    workers: tuple[ProcessPoolExecutor, Any], store: SalesStore, database_url: str
) -> None:
    for _ in range(ROUNDS):
        a, b = fresh("A"), fresh("B")
        store.ingest(parse_csv(csv_of([a, b], range(28), 1.0)))
        forward = csv_of([a, b], range(28), 2.0)
        backward = csv_of([b, a], range(28), 3.0)

        outcomes = together(
            workers,
            (ingest_in_worker, database_url, forward, "replace"),
            (ingest_in_worker, database_url, backward, "replace"),
        )

        assert [kind for kind, _ in outcomes] == ["stored", "stored"], outcomes
        # Each upload raised both products' data version exactly once: 1 -> 3.
        assert sorted(v for _, versions in outcomes for v in versions.values()) == [2, 2, 3, 3]
        assert store.get_data_version(a) == store.get_data_version(b) == 3
        for product in (a, b):
            quantities = {p.quantity for p in store.get_history(product)}
            assert len(store.get_history(product)) == 28
            assert quantities in ({2.0}, {3.0})  # one upload's rows, whole, then the other's


def test_an_ingest_while_the_product_trains_keeps_both(
    workers: tuple[ProcessPoolExecutor, Any], database_url: str
) -> None:
    settings: Settings = make_settings(database_url)
    service = SalescastService(settings)
    product = fresh("TRAIN")
    service.ingest_csv(csv_of([product], range(90), 4.0), columns=ColumnSpec())

    outcomes = together(
        workers,
        (train_in_worker, database_url, product),
        (ingest_in_worker, database_url, csv_of([product], range(90, 120), 6.0), "append"),
    )

    assert outcomes[0] == ("trained", 1), outcomes
    assert outcomes[1] == ("stored", {product: 2}), outcomes
    assert service.registry.get_active_version(product) == 1
    assert len(service.store.get_history(product)) == 120
    service.close()


def test_concurrent_uploads_to_two_uvicorn_workers_never_answer_500(database_url: str) -> None:
    Database(database_url).dispose()  # the schema, before two workers race to make it
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "text/csv"}
    with UvicornServer(server_env(database_url), workers=2) as server:
        for _ in range(ROUNDS):
            a, b = fresh("HA"), fresh("HB")
            same = [csv_of([a, b], range(28), 1.0)] * 2
            crossed = [csv_of([a, b], range(28), 2.0), csv_of([b, a], range(28), 3.0)]

            appends = post_at_once(server.url, same, "append", headers)
            replaces = post_at_once(server.url, crossed, "replace", headers)

            assert sorted(r.status_code for r in appends) == [201, 400], [r.text for r in appends]
            [rejected] = [r for r in appends if r.status_code == 400]
            assert rejected.json()["detail"]["total"] == 56
            assert all(p["line"] is not None for p in rejected.json()["detail"]["problems"])
            assert [r.status_code for r in replaces] == [201, 201], [r.text for r in replaces]
            products = {p["product_id"]: p for p in httpx.get(f"{server.url}/products").json()}
            assert products[a]["sales_days"] == products[b]["sales_days"] == 28


def post_at_once(
    base: str, bodies: list[bytes], mode: str, headers: dict[str, str]
) -> list[httpx.Response]:
    barrier = threading.Barrier(len(bodies))

    def post(body: bytes) -> httpx.Response:
        with httpx.Client(base_url=base, timeout=60) as client:
            barrier.wait(timeout=30)
            return client.post(f"/sales?mode={mode}", content=body, headers=headers)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))
