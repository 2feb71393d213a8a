"""The product listing on SQLite and PostgreSQL: filters, sorts, pages and totals done in SQL."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable

import pytest
from sqlalchemy import insert, update

from salescast.service import SalescastService
from salescast.store import ProductQuery
from salescast.store.ingest import ColumnSpec
from salescast.store.schema import ModelVersion, Product

COLUMNS = ColumnSpec()
START = dt.date(2024, 1, 1)


def ingest_products(service: SalescastService, days_of: dict[str, int]) -> None:
    """One upload: each product gets `days_of[id]` consecutive days from START."""
    lines = ["date,product_id,quantity"]
    for product_id, days in days_of.items():
        lines += [f"{START + dt.timedelta(days=d)},{product_id},{d + 1}" for d in range(days)]
    service.ingest_csv(("\n".join(lines) + "\n").encode(), columns=COLUMNS)


def give_models(service: SalescastService, scores: dict[str, tuple[float, float]]) -> None:
    """Store version 1 of each product with (mase, mase_seasonal_naive) and make it active.

    Rows written straight into the store's tables: the listing only reads the
    active version's metrics, and training thousands of products would take
    minutes. The blob is never decoded here.
    """
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "product_id": product_id,
            "version": 1,
            "created_at": now,
            "train_start": START,
            "train_end": START,
            "data_version": 1,
            "params": {},
            "metrics": {"mase": mase, "mase_seasonal_naive": naive},
            "prophet_version": "test",
            "model_format": "test",
            "model_blob": b"-",
        }
        for product_id, (mase, naive) in scores.items()
    ]
    with service.database.session() as session:
        session.execute(insert(ModelVersion), rows)
        session.execute(
            update(Product)
            .where(Product.id.in_(list(scores)))
            .values(active_version=1, last_model_version=1)
        )


def ids(service: SalescastService, **query: object) -> list[str]:
    return [p.product_id for p in service.store.find_products(ProductQuery(**query)).products]  # type: ignore[arg-type]


@pytest.fixture
def small(service: SalescastService) -> SalescastService:
    ingest_products(service, {"Alpha": 3, "beta": 5, "GAMMA_1": 1, "delta": 4, "eps.2": 2})
    give_models(service, {"Alpha": (0.8, 1.0), "beta": (1.5, 1.0), "delta": (0.9, 0.0)})
    return service


def test_products_are_listed_by_id_with_their_active_versions_scores(
    small: SalescastService,
) -> None:
    page = small.store.find_products(ProductQuery())
    assert [p.product_id for p in page.products] == ["Alpha", "GAMMA_1", "beta", "delta", "eps.2"]
    alpha = page.products[0]
    assert (alpha.sales_days, alpha.first_date, alpha.last_date) == (
        3,
        START,
        START + dt.timedelta(days=2),
    )
    assert (alpha.active_version, alpha.mase, alpha.mase_seasonal_naive) == (1, 0.8, 1.0)
    gamma = page.products[1]
    assert (gamma.active_version, gamma.mase, gamma.mase_seasonal_naive) == (None, None, None)
    assert page.total == 5
    assert page.next_offset is None


def test_search_is_a_case_insensitive_substring_with_plain_wildcards(
    small: SalescastService,
) -> None:
    assert ids(small, q="A") == ["Alpha", "GAMMA_1", "beta", "delta"]
    assert ids(small, q="mma_") == ["GAMMA_1"]
    assert ids(small, q="%") == []  # not "any text"
    assert ids(small, q=".") == ["eps.2"]
    assert ids(small, q="_") == ["GAMMA_1"]


def test_model_filters_keep_products_with_without_or_worse_than_seasonal_naive(
    small: SalescastService,
) -> None:
    assert ids(small, has_model=True) == ["Alpha", "beta", "delta"]
    assert ids(small, has_model=False) == ["GAMMA_1", "eps.2"]
    assert ids(small, worse_than_naive=True) == ["beta", "delta"]
    assert ids(small, worse_than_naive=False) == ["Alpha"]
    assert ids(small, worse_than_naive=True, q="BE") == ["beta"]


def test_sorts_put_products_without_a_value_last_in_both_directions(
    small: SalescastService,
) -> None:
    assert ids(small, sort="sales_days") == ["GAMMA_1", "eps.2", "Alpha", "delta", "beta"]
    assert ids(small, sort="sales_days", descending=True) == [
        "beta", "delta", "Alpha", "eps.2", "GAMMA_1",
    ]  # fmt: skip
    assert ids(small, sort="mase") == ["Alpha", "delta", "beta", "GAMMA_1", "eps.2"]
    by_mase_down = ["beta", "delta", "Alpha", "GAMMA_1", "eps.2"]
    assert ids(small, sort="mase", descending=True) == by_mase_down
    # Ratio to seasonal-naive's MASE: delta's naive scored 0, so it has no ratio.
    assert ids(small, sort="mase_vs_naive") == ["Alpha", "beta", "GAMMA_1", "delta", "eps.2"]
    assert ids(small, sort="mase_vs_naive", descending=True)[:2] == ["beta", "Alpha"]


def test_pages_cover_every_match_once_and_say_where_the_next_starts(
    small: SalescastService,
) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = small.store.find_products(ProductQuery(sort="mase", limit=2, offset=offset))
        assert page.total == 5
        seen += [p.product_id for p in page.products]
        offset = page.next_offset
    assert seen == ids(small, sort="mase", limit=None)
    assert ids(small, limit=2, offset=10) == []


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def test_a_page_of_five_thousand_products_is_answered_from_sql(
    service: SalescastService,
) -> None:
    names = [f"P{n:05d}" for n in range(5000)]
    ingest_products(service, {name: 1 + n % 7 for n, name in enumerate(names)})
    # Every third product has a model; those with n % 2 lose to seasonal-naive.
    scores = {name: (1.0 + n / 10_000, 1.0 if n % 2 else 2.0) for n, name in enumerate(names)}
    give_models(service, {name: scores[name] for name in names[::3]})

    started = time.perf_counter()
    page = service.store.find_products(
        ProductQuery(worse_than_naive=True, sort="mase", descending=True, limit=50, offset=100)
    )
    elapsed = time.perf_counter() - started

    worse = [n for n, name in enumerate(names) if n % 3 == 0 and n % 2]
    expected = [names[n] for n in sorted(worse, reverse=True)][100:150]
    assert page.total == len(worse)
    assert [p.product_id for p in page.products] == expected
    assert [p.sales_days for p in page.products] == [1 + names.index(p) % 7 for p in expected]
    assert elapsed < 5.0, f"a page took {elapsed:.2f} s"  # a generous safety bound only

    by_days = service.store.find_products(
        ProductQuery(q="p04", sort="sales_days", descending=True, limit=3)
    )
    assert by_days.total == 1000
    assert [p.product_id for p in by_days.products] == ["P04003", "P04010", "P04017"]
