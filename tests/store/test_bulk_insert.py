"""Appended rows arrive whole by either bulk path (COPY on PostgreSQL, batched INSERT)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from salescast.store import Database, SalesStore
from salescast.store.ingest import ParsedSales
from salescast.store.sales import BulkInsert

DAY = dt.date(2021, 3, 1)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.mark.parametrize("method", ["copy", "values"])
def test_every_row_is_stored_with_its_exact_quantity(
    database: Database, method: BulkInsert
) -> None:
    rows = [
        (f"P{n % 7}", DAY + dt.timedelta(days=n // 7), q)
        for n, q in enumerate([0.1, -3.0, 1e-7, 123456789.25, 2 / 3, 5.0, 1e300] * 3_000)
    ]
    store = SalesStore(database, bulk_insert=method)

    store.ingest(ParsedSales(rows))

    stored = {(p, point.date, point.quantity) for p in store.list_product_ids()
              for point in store.get_history(p)}  # fmt: skip
    assert stored == set(rows)


def test_ids_that_would_need_escaping_in_copy_text_are_stored_as_given(database: Database) -> None:
    # The parser never admits these; a caller building ParsedSales by hand can.
    odd = ["tab\tin", "back\\slash", "new\nline"]
    store = SalesStore(database)

    store.ingest(ParsedSales([(p, DAY, 1.0) for p in odd]))

    assert store.list_product_ids() == sorted(odd)
    assert all(len(store.get_history(p)) == 1 for p in odd)
