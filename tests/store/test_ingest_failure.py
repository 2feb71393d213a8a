"""An ingest that fails after part of its rows were written leaves the store as it was.

The failure is injected where the rows are written: the row writer stores a
first chunk of the upload for real, then raises, inside the ingest's
transaction. Nothing of the upload may remain, on either store and either
bulk path, and the same upload goes through afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

import salescast.store.sales as sales_module
from salescast.store import Database, SalesStore
from salescast.store.ingest import ParsedSales
from salescast.store.sales import BulkInsert, IngestMode
from salescast.store.schema import Sale

START = dt.date(2022, 1, 1)
FIRST_CHUNK_ROWS = 1_000
PRODUCTS = ("existing", "newcomer")


class InjectedWriteError(RuntimeError):
    """The failure a disk, a lost connection or a bug could raise mid-write."""


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def days(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range(count)]


def upload(first: dt.date, count: int, quantity: float) -> ParsedSales:
    return ParsedSales([(p, day, quantity) for day in days(first, count) for p in PRODUCTS])


def snapshot(store: SalesStore, database: Database) -> dict[str, Any]:
    """Everything an ingest may change: products, versions, every stored row."""
    with database.session() as session:
        rows = session.scalar(select(func.count()).select_from(Sale))
    return {
        "rows": rows,
        "products": store.list_products(),
        "histories": {p: store.get_history(p) for p in store.list_product_ids()},
        "data_versions": {p: store.get_data_version(p) for p in store.list_product_ids()},
    }


def fail_after_the_first_chunk(
    monkeypatch: pytest.MonkeyPatch, writer_name: str
) -> Callable[[], int]:
    """Make `salescast.store.sales.<writer_name>(conn, rows, ...)` write its first
    FIRST_CHUNK_ROWS rows for real, then raise; returns how many rows it wrote."""
    real = getattr(sales_module, writer_name)
    written: list[int] = []

    def first_chunk_then_fail(conn: Any, rows: list[Any], *args: Any) -> None:
        chunk = rows[:FIRST_CHUNK_ROWS]
        real(conn, chunk, *args)
        written.append(len(chunk))
        raise InjectedWriteError(f"failed after writing {len(chunk)} of {len(rows)} rows")

    monkeypatch.setattr(sales_module, writer_name, first_chunk_then_fail)
    return lambda: sum(written)


# On PostgreSQL "copy" writes with COPY FROM STDIN; SQLite takes batched INSERTs either way.
@pytest.mark.parametrize("method", ["copy", "values"])
def test_an_append_that_fails_after_its_first_chunk_leaves_no_rows(
    database: Database, monkeypatch: pytest.MonkeyPatch, method: BulkInsert
) -> None:
    store = SalesStore(database, bulk_insert=method)
    store.ingest(ParsedSales([("existing", START - dt.timedelta(days=1), 7.0)]))
    before = snapshot(store, database)
    big = upload(START, count=3 * FIRST_CHUNK_ROWS, quantity=1.5)
    written = fail_after_the_first_chunk(monkeypatch, "_insert_rows")

    with pytest.raises(InjectedWriteError):
        store.ingest(big)

    assert written() == FIRST_CHUNK_ROWS  # the failure came after rows had reached the store
    assert snapshot(store, database) == before
    monkeypatch.undo()
    result = store.ingest(big)  # no leftover row conflicts with the retry
    assert result.data_versions == {"existing": 2, "newcomer": 1}
    after = snapshot(store, database)
    assert after["rows"] == before["rows"] + len(big.rows)


def test_a_replace_that_fails_after_its_first_chunk_keeps_every_old_quantity(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SalesStore(database)
    store.ingest(upload(START, count=3 * FIRST_CHUNK_ROWS, quantity=1.0))
    before = snapshot(store, database)
    mode: IngestMode = "replace"
    overwrite = upload(START, count=4 * FIRST_CHUNK_ROWS, quantity=9.0)
    written = fail_after_the_first_chunk(monkeypatch, "_upsert_rows")

    with pytest.raises(InjectedWriteError):
        store.ingest(overwrite, mode=mode)

    assert written() == FIRST_CHUNK_ROWS
    assert snapshot(store, database) == before
    monkeypatch.undo()
    result = store.ingest(overwrite, mode=mode)
    assert result.data_versions == {"existing": 2, "newcomer": 2}
    assert {point.quantity for point in store.get_history("existing")} == {9.0}
