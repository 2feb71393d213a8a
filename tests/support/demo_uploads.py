"""Uploads made of the bundled demo data: a product's real last days, re-sent or zeroed."""

from __future__ import annotations

import csv
import io

from salescast.demo import DEMO_COLUMNS, read_demo_csv
from salescast.service import SalescastService

__all__ = ["DEMO_COLUMNS", "last_days", "upload", "zeroed_last_days"]


def _rows_of(product_id: str) -> list[dict[str, str]]:
    store, dept = product_id.split("-", 1)
    rows = csv.DictReader(io.StringIO(read_demo_csv().decode()))
    return [r for r in rows if (r["store_id"], r["dept_id"]) == (store, dept)]


def _csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["store_id", "dept_id", "date", "sales"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def last_days(product_id: str, days: int) -> bytes:
    """The product's last `days` stored days, as the demo has them (a corrected re-upload)."""
    return _csv(_rows_of(product_id)[-days:])


def zeroed_last_days(product_id: str, days: int) -> bytes:
    """The product's last `days` days with zero sales: a broken feed, or a store closed."""
    return _csv([{**row, "sales": "0"} for row in _rows_of(product_id)[-days:]])


def upload(service: SalescastService, body: bytes) -> None:
    """Store `body` in replace mode: the product's data version rises by one."""
    service.ingest_csv(body, columns=DEMO_COLUMNS, mode="replace")
