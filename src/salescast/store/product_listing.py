"""One page of the product listing: filtered, sorted and paged in SQL, with the total.

The listing behind `GET /products`, `salescast products` and the dashboard.
Filters and sort keys only read the `products` row and its active version's
metrics, so the page is chosen before any sales row is read; the sales-day
count and date range are then read for that page's products only (one index
range each, on the sales primary key). Only `sort=sales_days` has to count the
sales of every product that passes the filters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlalchemy.orm import Session

from salescast.store.schema import ModelVersion, Product, Sale

SortKey = Literal["id", "sales_days", "mase", "mase_vs_naive"]
SORT_KEYS: tuple[SortKey, ...] = ("id", "sales_days", "mase", "mase_vs_naive")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class ProductQuery:
    """Which products, in which order, which slice.

    `q` is a case-insensitive substring of the id (`%` and `_` are plain
    characters). `freq` keeps products of that frequency (`D`, `W-FRI`,
    `MS`...). `has_model` keeps products with (True) or without (False) an
    active version. `worse_than_naive` True keeps products whose active
    version's backtest MASE is above seasonal-naive's on the same holdout;
    False keeps those with a model that is not (products without a model
    pass neither). `sort` is a `SortKey`, `descending` reverses it; products
    without the sort value (no model) come last either way, and ties are
    broken by id so that pages never overlap. `limit=None` returns every
    match (for the CLI's `--all` and internal callers). `product_id` keeps
    that one product only (`SalesStore.get_listed_product`).
    """

    q: str | None = None
    product_id: str | None = None
    freq: str | None = None
    has_model: bool | None = None
    worse_than_naive: bool | None = None
    sort: SortKey = "id"
    descending: bool = False
    limit: int | None = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True)
class ListedProduct:
    """A product as listed: its sales summary and its active version's backtest scores."""

    product_id: str
    frequency: str
    sales_days: int
    first_date: dt.date | None
    last_date: dt.date | None
    active_version: int | None
    data_version: int
    mase: float | None
    mase_seasonal_naive: float | None


@dataclass(frozen=True)
class ProductPage:
    """The products of one page and how many match the query in all."""

    products: list[ListedProduct]
    total: int
    query: ProductQuery

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, or None on the last page."""
        if self.query.limit is None:
            return None
        following = self.query.offset + self.query.limit
        return following if following < self.total else None


def find_products(session: Session, query: ProductQuery) -> ProductPage:
    """Run `query` in `session`: the page's rows and the number of matches (two statements)."""
    mase = ModelVersion.metrics["mase"].as_float()
    naive = ModelVersion.metrics["mase_seasonal_naive"].as_float()
    sales_days = (
        select(func.count()).where(Sale.product_id == Product.id).scalar_subquery()
        if query.sort == "sales_days"
        else literal(0)
    )
    matching = (
        select(
            Product.id.label("id"),
            Product.frequency.label("frequency"),
            Product.active_version.label("active_version"),
            Product.data_version.label("data_version"),
            mase.label("mase"),
            naive.label("naive"),
            sales_days.label("sales_days"),
        )
        .select_from(Product)
        .outerjoin(
            ModelVersion,
            and_(
                ModelVersion.product_id == Product.id,
                ModelVersion.version == Product.active_version,
            ),
        )
        .where(*_filters(query, mase, naive))
    )
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    dialect = session.get_bind().dialect.name
    sliced = matching.order_by(*_ordering(query, matching.selected_columns, dialect))
    if query.limit is not None:
        sliced = sliced.limit(query.limit)
    page = sliced.offset(query.offset).subquery()
    listed = _with_sales_summary(page).order_by(*_ordering(query, page.c, dialect))
    rows = session.execute(listed).all()
    products = [
        ListedProduct(
            product_id=row.id,
            frequency=row.frequency,
            sales_days=row.days,
            first_date=row.first_date,
            last_date=row.last_date,
            active_version=row.active_version,
            data_version=row.data_version,
            mase=row.mase,
            mase_seasonal_naive=row.naive,
        )
        for row in rows
    ]
    return ProductPage(products=products, total=int(total), query=query)


def _filters(
    query: ProductQuery, mase: ColumnElement[float], naive: ColumnElement[float]
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if query.product_id is not None:
        filters.append(Product.id == query.product_id)
    if query.q:
        filters.append(func.lower(Product.id).contains(query.q.lower(), autoescape=True))
    if query.freq is not None:
        filters.append(Product.frequency == query.freq)
    if query.has_model is True:
        filters.append(Product.active_version.is_not(None))
    elif query.has_model is False:
        filters.append(Product.active_version.is_(None))
    if query.worse_than_naive is True:
        filters.append(mase > naive)
    elif query.worse_than_naive is False:
        filters.append(mase <= naive)
    return filters


def _ordering(query: ProductQuery, columns: Any, dialect: str) -> list[ColumnElement[Any]]:
    """ORDER BY terms over `columns` (the listing's named columns): NULLs last, then id.

    Ids sort by their bytes on both stores (SQLite's BINARY; PostgreSQL's "C"
    collation rather than the database's locale, which may ignore case): the
    same store contents list in the same order wherever they are kept.

    NULLs last is spelled as a leading `IS NULL` term because SQLite and
    PostgreSQL put NULLs on opposite ends by default. `mase_vs_naive` is the
    ratio of the model's MASE to seasonal-naive's on the same holdout (their
    MAE ratio: below 1 beats seasonal-naive), NULL when seasonal-naive's is 0.
    """
    product_id = columns.id.collate("C") if dialect == "postgresql" else columns.id
    if query.sort == "id":
        key: ColumnElement[Any] = product_id
    elif query.sort == "sales_days":
        key = columns.sales_days
    elif query.sort == "mase":
        key = columns.mase
    else:
        key = columns.mase / func.nullif(columns.naive, 0.0)
    terms: list[ColumnElement[Any]] = []
    if query.sort != "id":
        terms.append(case((key.is_(None), 1), else_=0))
    terms.append(key.desc() if query.descending else key.asc())
    if query.sort != "id":
        terms.append(product_id.asc())
    return terms


def _with_sales_summary(page: Any) -> Select[Any]:
    """The page's columns plus each product's sales-day count and first and last day."""

    def per_product(aggregate: Any) -> Any:
        return select(aggregate).where(Sale.product_id == page.c.id).scalar_subquery()

    return select(
        page,
        per_product(func.count()).label("days"),
        per_product(func.min(Sale.day)).label("first_date"),
        per_product(func.max(Sale.day)).label("last_date"),
    )
