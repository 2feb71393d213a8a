"""The tables of schema version 2 (model management), frozen for migration tests.

As `src/salescast/store/schema.py` was at commit c95d7c7: schema version 1's
tables (`schema_v1`) with products.pinned, products.last_model_version,
model_versions.not_activated_reason, and the schema_info table.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

from tests.store import schema_v1

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("data_version", Integer, nullable=False),
    Column("active_version", Integer, nullable=True),
    Column("pinned", Boolean, server_default=false(), nullable=False),
    Column("last_model_version", Integer, server_default=text("0"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sales = schema_v1.sales.to_metadata(metadata)

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
    Column("not_activated_reason", Text, nullable=True),
)

jobs = schema_v1.jobs.to_metadata(metadata)

schema_info = Table(
    "schema_info",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)
