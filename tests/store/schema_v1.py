"""The tables as salescast first released them (schema version 1), frozen for migration tests.

Copied from `src/salescast/store/schema.py` as of commit 0e559d4, written as
Core tables so that they stay what they were whatever the models become.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("data_version", Integer, nullable=False),
    Column("active_version", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sales = Table(
    "sales",
    metadata,
    Column("product_id", ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("quantity", Float, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("product_id", ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("train_start", Date, nullable=False),
    Column("train_end", Date, nullable=False),
    Column("data_version", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("prophet_version", String(32), nullable=False),
    Column("model_format", String(32), nullable=False),
    Column("model_blob", LargeBinary, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=True),
    Column("results", JSON, nullable=False),
    Column("owner_host", String(255), nullable=False),
    Column("owner_pid", Integer, nullable=False),
    Column("owner_boot_id", String(32), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Index("ix_jobs_status", "status"),
    Index("ix_jobs_created_at", "created_at"),
)
