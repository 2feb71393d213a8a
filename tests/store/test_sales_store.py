"""SalesStore on SQLite and PostgreSQL: all-or-nothing ingest, data versions, queries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from salescast.service import SalescastService
from salescast.store import ProductNotFoundError
from salescast.store.ingest import ColumnSpec, IngestError
from salescast.store.schema import Sale

COLUMNS = ColumnSpec()


def csv_of(*rows: str) -> bytes:
    return ("date,product_id,quantity\n" + "\n".join(rows) + "\n").encode()


def count_sales(service: SalescastService) -> int:
    with service.database.session() as session:
        return session.scalar(select(func.count()).select_from(Sale)) or 0


def test_ingest_stores_rows_and_starts_each_product_at_data_version_one(
    service: SalescastService,
) -> None:
    result = service.ingest_csv(
        csv_of("2024-01-01,a,1", "2024-01-02,a,2.5", "2024-01-01,b,-3"), columns=COLUMNS
    )
    assert result.rows == 3
    assert result.data_versions == {"a": 1, "b": 1}
    assert count_sales(service) == 3


def test_data_version_rises_only_for_products_an_ingest_touches(
    service: SalescastService,
) -> None:
    service.ingest_csv(csv_of("2024-01-01,a,1", "2024-01-01,b,1"), columns=COLUMNS)
    result = service.ingest_csv(csv_of("2024-01-02,a,1"), columns=COLUMNS)
    assert result.data_versions == {"a": 2}
    assert service.store.get_data_version("b") == 1


def test_append_rejects_a_day_already_stored_and_stores_nothing_of_the_upload(
    service: SalescastService,
) -> None:
    service.ingest_csv(csv_of("2024-01-01,a,1"), columns=COLUMNS)
    with pytest.raises(IngestError) as caught:
        service.ingest_csv(
            csv_of("2024-01-02,a,5", "2024-01-01,a,9", "2024-01-01,c,1"), columns=COLUMNS
        )
    assert "already has sales on 2024-01-01" in str(caught.value)
    assert count_sales(service) == 1
    assert service.store.get_data_version("a") == 1
    with pytest.raises(ProductNotFoundError):
        service.store.get_product("c")  # the new product of the failed upload is not kept


def test_replace_overwrites_stored_days_and_adds_new_ones(service: SalescastService) -> None:
    service.ingest_csv(csv_of("2024-01-01,a,1"), columns=COLUMNS)
    service.ingest_csv(csv_of("2024-01-01,a,7", "2024-01-02,a,8"), columns=COLUMNS, mode="replace")
    history = service.store.get_history("a")
    assert [(p.date.isoformat(), p.quantity) for p in history] == [
        ("2024-01-01", 7.0),
        ("2024-01-02", 8.0),
    ]
    assert service.store.get_data_version("a") == 2


def test_invalid_upload_leaves_the_store_as_it_was(service: SalescastService) -> None:
    service.ingest_csv(csv_of("2024-01-01,a,1"), columns=COLUMNS)
    with pytest.raises(IngestError):
        service.ingest_csv(csv_of("2024-01-02,a,1", "not-a-date,a,1"), columns=COLUMNS)
    assert count_sales(service) == 1
    assert service.store.get_data_version("a") == 1


def test_history_is_summed_per_iso_week_and_per_month(service: SalescastService) -> None:
    # 2024-01-01 is a Monday; 2024-01-08 starts the next ISO week.
    service.ingest_csv(
        csv_of("2024-01-01,a,1", "2024-01-07,a,2", "2024-01-08,a,4", "2024-02-01,a,8"),
        columns=COLUMNS,
    )
    weekly = service.store.get_history("a", freq="W")
    assert [(p.date, p.quantity) for p in weekly] == [
        (dt.date(2024, 1, 1), 3.0),
        (dt.date(2024, 1, 8), 4.0),
        (dt.date(2024, 1, 29), 8.0),
    ]
    monthly = service.store.get_history("a", freq="M")
    assert [(p.date, p.quantity) for p in monthly] == [
        (dt.date(2024, 1, 1), 7.0),
        (dt.date(2024, 2, 1), 8.0),
    ]


def test_history_range_is_inclusive_at_both_ends(service: SalescastService) -> None:
    service.ingest_csv(
        csv_of("2024-01-01,a,1", "2024-01-02,a,2", "2024-01-03,a,3"), columns=COLUMNS
    )
    days = service.store.get_history("a", start=dt.date(2024, 1, 2), end=dt.date(2024, 1, 3))
    assert [p.quantity for p in days] == [2.0, 3.0]


def test_history_of_an_unknown_product_raises_not_found(service: SalescastService) -> None:
    with pytest.raises(ProductNotFoundError):
        service.store.get_history("nope")


def test_product_list_counts_days_and_shows_first_and_last_date(
    service: SalescastService,
) -> None:
    service.ingest_csv(
        csv_of("2024-01-03,a,1", "2024-01-01,a,1", "2024-01-01,b,1"), columns=COLUMNS
    )
    [a, b] = service.store.list_products()
    assert (a.product_id, a.sales_days, a.first_date, a.last_date) == (
        "a",
        2,
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 3),
    )
    assert (b.product_id, b.sales_days, b.active_version) == ("b", 1, None)


def test_busiest_products_rank_by_volume_over_their_own_last_days(
    service: SalescastService,
) -> None:
    service.ingest_csv(
        csv_of(
            "2023-01-01,big,1000",  # outside big's last 28 days: not counted
            "2024-03-01,big,50",
            "2024-03-01,small,1",
            "2030-01-01,stray,20",  # a stray future date must not hide the others
        ),
        columns=COLUMNS,
    )
    assert service.store.list_busiest_products(days=28, limit=2) == ["big", "stray"]
    assert service.store.list_busiest_products(days=28, limit=5) == ["big", "stray", "small"]
