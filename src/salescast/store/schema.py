"""Tables: products (data version, active model, frequency), sales, models, jobs, schema version.

A change to these tables raises `salescast.store.migrations.SCHEMA_VERSION` and
adds the migration that brings a database of the previous version up to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PRODUCT_ID_MAX_LENGTH = 128
BATCH_ID_MAX_LENGTH = 64  # job ids and the CLI's batch ids are 32 hex digits
FREQUENCY_MAX_LENGTH = 8


class Base(DeclarativeBase):
    pass


class Product(Base):
    """One forecastable series.

    `data_version` rises by one with every ingest that touches the product; cached
    data queries are keyed on it, so it must never go backwards (it lives here, in
    the durable store, not in Redis). `active_version` points at the model version
    that forecasts are served from; it is only ever set in the same transaction
    that wrote that version, or to a version that already exists.

    `pinned` says the active version was chosen by hand: trainings then store
    new versions without activating them. `last_model_version` is the highest
    version number ever given to the product: numbers are drawn from it, so a
    deleted version's number is never given again (cache keys and ETags name a
    model by its number, and must never name two different models).

    `frequency` is the series' pandas alias (`D`, `W-FRI`, `MS`, `ME`; see
    `salescast.store.frequency`), set when the product is first stored and
    never changed: every later upload must fit it.
    """

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(PRODUCT_ID_MAX_LENGTH), primary_key=True)
    data_version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    active_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pinned: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )
    last_model_version: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0"), nullable=False
    )
    frequency: Mapped[str] = mapped_column(
        String(FREQUENCY_MAX_LENGTH), default="D", server_default=text("'D'"), nullable=False
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Sale(Base):
    """Units sold of one product on one day (negative for net returns)."""

    __tablename__ = "sales"

    product_id: Mapped[str] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    quantity: Mapped[float] = mapped_column(Float, nullable=False)


class ModelVersion(Base):
    """An immutable trained model: rows are inserted, never updated (and deleted only by hand
    or by pruning, never while active).

    `data_version` is the product's data version read before its history was
    read for training: a bulk training skips a product whose data version has
    not moved since. `not_activated_reason` says why the training that stored
    the version left another one active (pinned, or a worse backtest); None
    when training activated it.

    `batch_id` names the bulk training (the job id) that stored the version;
    None for a version trained on its own. The unique index on (product_id,
    batch_id) makes a batch store at most one version per product, whatever
    was retried: a product trained twice in one batch (its Dask worker died
    after finishing, a result delivered twice) finds its version already
    there (`ModelRegistry.store_batch_version`). NULLs never collide, so
    single trainings are not limited.
    """

    __tablename__ = "model_versions"
    __table_args__ = (Index("uq_model_versions_batch", "product_id", "batch_id", unique=True),)

    product_id: Mapped[str] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    train_start: Mapped[dt.date] = mapped_column(Date, nullable=False)
    train_end: Mapped[dt.date] = mapped_column(Date, nullable=False)
    data_version: Mapped[int] = mapped_column(Integer, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    prophet_version: Mapped[str] = mapped_column(String(32), nullable=False)
    model_format: Mapped[str] = mapped_column(String(32), nullable=False)
    model_blob: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    not_activated_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(BATCH_ID_MAX_LENGTH), nullable=True)


class Job(Base):
    """A background job (today: training many products), visible to every worker and instance.

    Rows are written by `salescast.store.jobs.JobStore` only. `status` moves
    queued -> running -> succeeded | partial | failed | cancelled (or queued -> failed |
    cancelled) and never leaves a finished state. The owner (host, pid and a
    random id of that process's boot) refreshes `heartbeat_at` while the job is
    unfinished; a row whose heartbeat is too old is marked failed by any
    worker. `results` holds one object per finished product:
    `{"product_id", "version", "error", "metrics"}`.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    done: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    failed: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    owner_host: Mapped[str] = mapped_column(String(255), nullable=False)
    owner_pid: Mapped[int] = mapped_column(Integer, nullable=False)
    owner_boot_id: Mapped[str] = mapped_column(String(32), nullable=False)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SchemaInfo(Base):
    """One row: the version of this schema the database holds (see `store.migrations`)."""

    __tablename__ = "schema_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    version: Mapped[int] = mapped_column(Integer, nullable=False)
