"""Tables: products (with their data version and active model), daily sales, model versions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PRODUCT_ID_MAX_LENGTH = 128


class Base(DeclarativeBase):
    pass


class Product(Base):
    """One forecastable series.

    `data_version` rises by one with every ingest that touches the product; cached
    data queries are keyed on it, so it must never go backwards (it lives here, in
    the durable store, not in Redis). `active_version` points at the model version
    that forecasts are served from; it is only ever set in the same transaction
    that wrote that version, or to a version that already exists.
    """

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(PRODUCT_ID_MAX_LENGTH), primary_key=True)
    data_version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    active_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
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
    """An immutable trained model: rows are inserted, never updated."""

    __tablename__ = "model_versions"

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
