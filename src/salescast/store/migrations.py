"""Schema versions: a fresh database gets the current tables, an older one is migrated up.

The version a database holds is the one row of `schema_info`. Databases made
before that table existed hold version 1 (their `products` table is there,
`schema_info` is not). Each migration brings version N to N + 1 and runs, with
the stamping of the new version, in the transaction `Database` opens for the
schema: a migration that fails leaves the database at its old version, and
workers starting at once take turns (PostgreSQL: an advisory lock; SQLite: the
write lock of BEGIN IMMEDIATE), so a migration runs once.

A migration's DDL is written out here, not taken from `schema.py`: the tables
there may change again later, and version 2 must stay what it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Integer,
    String,
    Text,
    false,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.schema import CreateColumn

from salescast.store.errors import StoreError
from salescast.store.frequency import FrequencyError, detect_frequency
from salescast.store.schema import Base, ModelVersion, Product, Sale, SchemaInfo

SCHEMA_VERSION = 4
"""1: the tables as first released. 2: products.pinned, products.last_model_version,
model_versions.not_activated_reason (pinning, never-reused numbers, activation rules).
3: model_versions.batch_id and its unique index with product_id (one version per
product per bulk training, however often it is retried). 4: products.frequency
(daily, weekly, monthly series)."""


class SchemaVersionError(StoreError):
    """The database was written by a newer salescast, whose schema this one does not know."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"the store's schema is version {found}, newer than this salescast knows "
            f"({SCHEMA_VERSION}); run a salescast at least as new as the one that wrote it"
        )
        self.found = found


def prepare_schema(conn: Connection) -> int:
    """Create the tables of an empty database, or migrate an older one; returns the version
    found (0 for an empty database). Idempotent. Raises SchemaVersionError for a newer one."""
    found = stored_schema_version(conn)
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(found)
    # Creates what is missing (on an empty database: everything, already at the
    # current version); existing tables are left alone, the migrations change them.
    Base.metadata.create_all(conn)
    if found:
        for version in range(found, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
    if found != SCHEMA_VERSION:
        _stamp(conn, SCHEMA_VERSION)
    return found


def stored_schema_version(conn: Connection) -> int:
    """The schema version the database holds: 0 when it has no salescast tables yet."""
    tables = set(inspect(conn).get_table_names())
    if SchemaInfo.__tablename__ in tables:
        version = conn.scalar(select(SchemaInfo.version).where(SchemaInfo.id == 1))
        if version is not None:
            return int(version)
    return 1 if Product.__tablename__ in tables else 0


def _stamp(conn: Connection, version: int) -> None:
    if conn.scalar(select(SchemaInfo.id).where(SchemaInfo.id == 1)) is None:
        conn.execute(insert(SchemaInfo).values(id=1, version=version))
    else:
        conn.execute(update(SchemaInfo).where(SchemaInfo.id == 1).values(version=version))


def _add_column(conn: Connection, table: str, column: Column[object]) -> None:
    spec = CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {spec}"))


def _v1_to_v2(conn: Connection) -> None:
    _add_column(conn, "products", Column("pinned", Boolean, server_default=false(), nullable=False))
    _add_column(
        conn,
        "products",
        Column("last_model_version", Integer, server_default=text("0"), nullable=False),
    )
    _add_column(conn, "model_versions", Column("not_activated_reason", Text, nullable=True))
    # Numbers already given stay taken. Hand activations made before pinning
    # existed cannot be told from trainings' activations: no product starts pinned.
    highest = (
        select(func.coalesce(func.max(ModelVersion.version), 0))
        .where(ModelVersion.product_id == Product.id)
        .scalar_subquery()
    )
    conn.execute(update(Product).values(last_model_version=highest))


def _v2_to_v3(conn: Connection) -> None:
    _add_column(conn, "model_versions", Column("batch_id", String(64), nullable=True))
    # An index, not a table constraint: SQLite cannot add a constraint to a table,
    # and a unique index enforces the same on both databases. Existing rows have
    # no batch (NULL), and NULLs never collide.
    conn.execute(
        text("CREATE UNIQUE INDEX uq_model_versions_batch ON model_versions (product_id, batch_id)")
    )


def _v3_to_v4(conn: Connection) -> None:
    _add_column(
        conn,
        "products",
        Column("frequency", String(8), server_default=text("'D'"), nullable=False),
    )
    # Each stored product gets the frequency its dates show. Dates that fit no
    # pattern stay daily: that is how they were trained until now, and
    # refusing to start would strand the whole store over one product.
    detected: dict[str, list[str]] = {}
    rows = conn.execute(
        select(Sale.product_id, Sale.day)
        .order_by(Sale.product_id)
        .execution_options(yield_per=50_000)
    )
    # One product's dates in memory at a time: a big store holds millions of rows.
    for product_id, group in itertools.groupby(rows, key=lambda row: row[0]):
        try:
            freq = detect_frequency(product_id, (day for _, day in group))
        except FrequencyError:
            continue
        if freq != "D":
            detected.setdefault(freq, []).append(product_id)
    for freq, product_ids in detected.items():
        conn.execute(update(Product).where(Product.id.in_(product_ids)).values(frequency=freq))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
}
"""From each version to the next: MIGRATIONS[n] turns version n into n + 1."""
