"""SalesStore: writes validated uploads all-or-nothing and answers history and product queries."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Select, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from salescast.store.database import Database
from salescast.store.errors import ProductNotFoundError, StoreUnavailableError
from salescast.store.frequency import (
    FrequencyError,
    describe_dates,
    detect_frequency,
    fits,
    unit_of,
)
from salescast.store.ingest import IngestError, IngestProblem, ParsedSales
from salescast.store.product_listing import (
    ListedProduct,
    ProductPage,
    ProductQuery,
    find_products,
)
from salescast.store.schema import Product, Sale

IngestMode = Literal["append", "replace"]
Frequency = Literal["D", "W", "M"]
# How appended rows reach PostgreSQL: COPY FROM STDIN, or batched INSERT ... VALUES
# (SQLAlchemy's insertmanyvalues). COPY is the default: bench/store_speed.py
# measures both. SQLite always takes batched INSERTs.
BulkInsert = Literal["copy", "values"]

# SQLite allows 32,766 bound parameters per statement; 3 per row leaves room.
_INSERT_CHUNK_ROWS = 5_000
_COPY_CHUNK_ROWS = 50_000
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)


@dataclass(frozen=True)
class ProductSummary:
    product_id: str
    sales_days: int
    first_date: dt.date | None
    last_date: dt.date | None
    active_version: int | None
    data_version: int
    frequency: str = "D"


@dataclass(frozen=True)
class SalesPoint:
    date: dt.date
    quantity: float


@dataclass(frozen=True)
class IngestResult:
    rows: int
    products: list[str]
    data_versions: dict[str, int]


class SalesStore:
    """Sales history per product.

    Every ingest runs in one transaction: either all rows are stored and every
    touched product's `data_version` rises by one, or nothing changes.
    """

    def __init__(self, database: Database, *, bulk_insert: BulkInsert = "copy") -> None:
        self._db = database
        self._bulk_insert = bulk_insert

    # --- writes

    def ingest(
        self, parsed: ParsedSales, *, mode: IngestMode = "append", freq: str | None = None
    ) -> IngestResult:
        """Store `parsed`; in `append` mode a (product, day) already stored rejects the upload.

        `replace` overwrites the quantity of days already stored and adds the
        rest. Raises IngestError (nothing stored) on conflicts, listing each
        (product, day) already stored with the line it came from.

        A product stored for the first time gets the frequency `freq` declares,
        else the one its dates show (`detect_frequency`); a product already
        stored keeps its own. Raises FrequencyError (nothing stored) when a new
        product's dates have no frequency, when dates do not fit their product's
        frequency, or when `freq` is not a stored product's frequency (a
        frequency never changes: the stored periods would mix).

        Safe under concurrent writers, in this process or others: the products
        an upload touches are created if missing and then locked, in id order,
        before any sale is read or written. Two uploads of one product therefore
        run one after the other (the second sees the first's days, so two appends
        of the same days store them once and reject the other), and two uploads
        touching several products in opposite orders cannot deadlock.
        """
        products = parsed.product_ids
        days = _days_by_product(parsed)

        def store(session: Session) -> dict[str, int]:
            conn = session.connection()
            known = _stored_frequencies(conn, products)
            new = {p: freq or detect_frequency(p, days[p]) for p in products if p not in known}
            _ensure_products(conn, products, new)
            _lock_products(conn, products)
            # Read again under the lock: a writer may have created a product meanwhile.
            _check_frequencies(days, _stored_frequencies(conn, products), freq)
            if mode == "append":
                _reject_conflicts(conn, parsed)
                _insert_rows(conn, parsed.rows, self._bulk_insert)
            else:
                _upsert_rows(conn, parsed.rows)
            conn.execute(
                update(Product)
                .where(Product.id.in_(products))
                .values(data_version=Product.data_version + 1)
            )
            query = select(Product.id, Product.data_version).where(Product.id.in_(products))
            return dict(conn.execute(query).all())

        versions = self._db.write(store)
        return IngestResult(rows=len(parsed.rows), products=products, data_versions=versions)

    # --- reads

    def list_products(self) -> list[ProductSummary]:
        """Every product with its number of sales days, date range and versions, by id."""
        query = _summaries().order_by(Product.id)
        with self._db.session() as session:
            return [ProductSummary(*row) for row in session.execute(query)]

    def find_products(self, query: ProductQuery) -> ProductPage:
        """One page of products matching `query`, with the number of matches
        (filtered, sorted and paged in SQL: see `salescast.store.product_listing`)."""
        with self._db.session() as session:
            return find_products(session, query)

    def get_listed_product(self, product_id: str) -> ListedProduct:
        """One product as the listing shows it; raises ProductNotFoundError."""
        page = self.find_products(ProductQuery(product_id=product_id, limit=1))
        if not page.products:
            raise ProductNotFoundError(product_id)
        return page.products[0]

    def list_product_ids(self) -> list[str]:
        """Every product id, sorted (no aggregate over the sales)."""
        with self._db.session() as session:
            return list(session.scalars(select(Product.id).order_by(Product.id)))

    def get_product(self, product_id: str) -> ProductSummary:
        """One product's summary; raises ProductNotFoundError."""
        query = _summaries().where(Product.id == product_id)
        with self._db.session() as session:
            row = session.execute(query).first()
        if row is None:
            raise ProductNotFoundError(product_id)
        return ProductSummary(*row)

    def get_frequency(self, product_id: str) -> str:
        """The product's frequency (`D`, `W-FRI`, `MS`, ...); raises ProductNotFoundError."""
        with self._db.session() as session:
            freq = session.scalar(select(Product.frequency).where(Product.id == product_id))
        if freq is None:
            raise ProductNotFoundError(product_id)
        return freq

    def get_data_version(self, product_id: str) -> int:
        """The product's current data version; raises ProductNotFoundError (fast read path)."""
        version = self._db.read_scalar(_DATA_VERSION, {"product_id": product_id})
        if version is None:
            raise ProductNotFoundError(product_id)
        return int(version)

    async def aget_data_version(self, product_id: str) -> int:
        """As `get_data_version`, for an event loop: on PostgreSQL the read joins the
        loop's next batch (`Database.read_scalar_batched`); on SQLite it is the same
        synchronous read."""
        if self._db.dialect != "postgresql":  # the batched read is psycopg's
            return self.get_data_version(product_id)
        version = await self._db.read_scalar_batched(_DATA_VERSIONS, product_id)
        if version is None:
            raise ProductNotFoundError(product_id)
        return int(version)

    def get_history(
        self,
        product_id: str,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        freq: Frequency = "D",
    ) -> list[SalesPoint]:
        """Sales of one product between `start` and `end` (inclusive), summed per D/W/M.

        Days without a stored row are absent, not zero: the store cannot tell a
        day without sales from a day without data. `W` buckets are ISO weeks
        labelled by their Monday, `M` buckets calendar months labelled by their
        first day. Raises ProductNotFoundError.
        """
        query = select(Sale.day, Sale.quantity).where(Sale.product_id == product_id)
        if start is not None:
            query = query.where(Sale.day >= start)
        if end is not None:
            query = query.where(Sale.day <= end)
        with self._db.session() as session:
            if session.get(Product, product_id) is None:
                raise ProductNotFoundError(product_id)
            rows = [(day, quantity) for day, quantity in session.execute(query.order_by(Sale.day))]
        return _resample(rows, freq)

    def get_series(self, product_id: str) -> tuple[list[dt.date], list[float]]:
        """The whole daily history as (days, quantities) in date order, for training."""
        history = self.get_history(product_id)
        return [p.date for p in history], [p.quantity for p in history]

    def list_busiest_products(self, *, days: int = 28, limit: int = 50) -> list[str]:
        """Products by total quantity over their own last `days` days of data, busiest first.

        Each product's window ends at its own last stored day, so one product
        with a stray future date does not push every other product out.
        """
        with self._db.session() as session:
            last_days = session.execute(
                select(Sale.product_id, func.max(Sale.day)).group_by(Sale.product_id)
            ).all()
            totals = []
            for product_id, last in last_days:
                since = last - dt.timedelta(days=days - 1)
                total = session.scalar(
                    select(func.sum(Sale.quantity)).where(
                        Sale.product_id == product_id, Sale.day >= since
                    )
                )
                totals.append((-(total or 0.0), product_id))
        return [product_id for _, product_id in sorted(totals)[:limit]]


def _summaries() -> Select[str, int, dt.date, dt.date, int | None, int, str]:
    """Products with their sales-day count and date range (in the order of ProductSummary)."""
    return (
        select(
            Product.id,
            func.count(Sale.day),
            func.min(Sale.day),
            func.max(Sale.day),
            Product.active_version,
            Product.data_version,
            Product.frequency,
        )
        .outerjoin(Sale, Sale.product_id == Product.id)
        .group_by(Product.id)
    )


_DATA_VERSION = select(Product.data_version).where(Product.id == bindparam("product_id"))
_DATA_VERSIONS = select(Product.id, Product.data_version).where(
    Product.id == any_(bindparam("keys"))
)


def _days_by_product(parsed: ParsedSales) -> dict[str, list[dt.date]]:
    days: dict[str, list[dt.date]] = {}
    for product, day, _ in parsed.rows:
        days.setdefault(product, []).append(day)
    return days


def _stored_frequencies(conn: Connection, product_ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(product_ids), _INSERT_CHUNK_ROWS):
        chunk = product_ids[start : start + _INSERT_CHUNK_ROWS]
        found.update(
            (product_id, freq)
            for product_id, freq in conn.execute(
                select(Product.id, Product.frequency).where(Product.id.in_(chunk))
            )
        )
    return found


def _check_frequencies(
    days: dict[str, list[dt.date]], stored: dict[str, str], declared: str | None
) -> None:
    """Raise FrequencyError for the first product whose upload does not fit its frequency."""
    for product_id in sorted(days):
        freq = stored[product_id]
        if declared is not None and declared != freq:
            raise FrequencyError(
                f"product {product_id!r} is stored as {_named(freq)}; an upload with "
                f"freq {declared} cannot change that (its periods would mix); upload it "
                f"with freq {freq} to sum the rows into its {unit_of(freq)}s",
                product_id=product_id,
            )
        if freq == "D":
            continue  # any date is a day
        off = sorted({day for day in days[product_id] if not fits(day, freq)})
        if off:
            raise FrequencyError(
                f"product {product_id!r} is stored as {_named(freq)}, but the upload has "
                f"{describe_dates(off)}, off its dates; ingest with --freq {freq} "
                f"(HTTP: freq={freq}) to sum the rows into its {unit_of(freq)}s",
                product_id=product_id,
            )


def _named(freq: str) -> str:
    if freq.startswith("W-"):
        return f"weekly on {freq[2:]} ({freq})"
    return {"MS": "monthly on the 1st (MS)", "ME": "monthly on the last day (ME)"}.get(
        freq, "daily (D)"
    )


def _ensure_products(
    conn: Connection, product_ids: Sequence[str], frequencies: dict[str, str]
) -> None:
    """Create the products not stored yet, with their `frequencies`; a product created
    meanwhile by another writer is left as it is (ON CONFLICT DO NOTHING), not an error."""
    now = dt.datetime.now(dt.UTC)
    new = [
        {"id": p, "data_version": 0, "created_at": now, "frequency": frequencies[p]}
        for p in product_ids
        if p in frequencies
    ]
    stmt = _dialect_insert(conn, Product).on_conflict_do_nothing(index_elements=[Product.id])
    for start in range(0, len(new), _INSERT_CHUNK_ROWS):
        conn.execute(stmt, new[start : start + _INSERT_CHUNK_ROWS])


def _lock_products(conn: Connection, product_ids: Sequence[str]) -> None:
    """Lock the products' rows until commit, in id order (PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds the whole database)."""
    if conn.dialect.name == "sqlite":
        return
    for start in range(0, len(product_ids), _INSERT_CHUNK_ROWS):
        chunk = product_ids[start : start + _INSERT_CHUNK_ROWS]
        conn.execute(
            select(Product.id).where(Product.id.in_(chunk)).order_by(Product.id).with_for_update()
        ).all()


def _reject_conflicts(conn: Connection, parsed: ParsedSales) -> None:
    first = min(row[1] for row in parsed.rows)
    last = max(row[1] for row in parsed.rows)
    stored = {
        (product, day)
        for product, day in conn.execute(
            select(Sale.product_id, Sale.day).where(
                Sale.product_id.in_(parsed.product_ids), Sale.day.between(first, last)
            )
        )
    }
    if not stored:
        return
    problems = [
        IngestProblem(
            line=parsed.line_of(index),
            column=None,
            reason=f"product {product!r} already has sales on {day.isoformat()} "
            "(mode append keeps stored days; use mode replace to overwrite them)",
            unit=parsed.unit,
        )
        for index, (product, day, _) in enumerate(parsed.rows)
        if (product, day) in stored
    ]
    if problems:
        raise IngestError(problems[:20], total=len(problems))


def _row_params(rows: Iterable[tuple[str, dt.date, float]]) -> list[dict[str, Any]]:
    return [{"product_id": p, "day": d, "quantity": q} for p, d, q in rows]


def _insert_rows(
    conn: Connection, rows: list[tuple[str, dt.date, float]], method: BulkInsert
) -> None:
    if method == "copy" and conn.dialect.name == "postgresql":
        _copy_rows(conn, rows)
        return
    for start in range(0, len(rows), _INSERT_CHUNK_ROWS):
        conn.execute(insert(Sale), _row_params(rows[start : start + _INSERT_CHUNK_ROWS]))


def _copy_rows(conn: Connection, rows: list[tuple[str, dt.date, float]]) -> None:
    """COPY the rows in PostgreSQL's text format, written in large chunks.

    Formatting the text here is about 3x faster than psycopg's per-row
    `write_row`. It needs no escaping: ingest admits product ids of ASCII
    letters, digits, `_`, `.` and `-` only, dates are ISO and quantities finite
    floats. Rows that break that rule (only a caller bypassing the parser could
    make them) go through `write_row`, which escapes.
    """
    import psycopg  # only PostgreSQL stores get here

    plain = all(_PLAIN_ID.fullmatch(product) for product in {row[0] for row in rows})
    driver_connection: Any = conn.connection.driver_connection
    try:
        with (
            driver_connection.cursor() as cursor,
            cursor.copy("COPY sales (product_id, day, quantity) FROM STDIN") as copy,
        ):
            for start in range(0, len(rows), _COPY_CHUNK_ROWS):
                chunk = rows[start : start + _COPY_CHUNK_ROWS]
                if plain:
                    copy.write("".join([f"{p}\t{d.isoformat()}\t{q!r}\n" for p, d, q in chunk]))
                else:
                    for row in chunk:
                        copy.write_row(row)
    except psycopg.OperationalError as exc:
        # The raw cursor's errors bypass SQLAlchemy's wrapping: a lost server, a
        # timeout or a deadlock here is the same StoreUnavailableError (and the
        # same retry in Database.write) as anywhere else.
        raise StoreUnavailableError.of(exc) from exc


def _upsert_rows(conn: Connection, rows: list[tuple[str, dt.date, float]]) -> None:
    stmt = _dialect_insert(conn, Sale)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Sale.product_id, Sale.day], set_={"quantity": stmt.excluded.quantity}
    )
    for start in range(0, len(rows), _INSERT_CHUNK_ROWS):
        conn.execute(stmt, _row_params(rows[start : start + _INSERT_CHUNK_ROWS]))


def _dialect_insert(conn: Connection, table: type[Product] | type[Sale]) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses (SQLite and PostgreSQL share them)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"salescast does not store in {dialect}")  # settings refuse it


def _resample(rows: Sequence[tuple[dt.date, float]], freq: Frequency) -> list[SalesPoint]:
    if freq == "D":
        return [SalesPoint(day, quantity) for day, quantity in rows]
    buckets: dict[dt.date, float] = {}
    for day, quantity in rows:
        label = day - dt.timedelta(days=day.weekday()) if freq == "W" else day.replace(day=1)
        buckets[label] = buckets.get(label, 0.0) + quantity
    return [SalesPoint(label, total) for label, total in buckets.items()]
