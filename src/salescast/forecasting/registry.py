"""ModelRegistry: immutable, numbered model versions per product, one of them active."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import any_, bindparam, func, select, update
from sqlalchemy.orm import Session

from salescast.forecasting.errors import ModelVersionNotFoundError
from salescast.store import Database, ProductNotFoundError
from salescast.store.schema import ModelVersion, Product

# Version numbers live in an INTEGER column: 32 bits on PostgreSQL, and SQLite
# raises OverflowError past 64. A number beyond this cannot name a stored version.
MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class ModelVersionInfo:
    """A version's metadata, without the model bytes."""

    product_id: str
    version: int
    created_at: dt.datetime
    train_start: dt.date
    train_end: dt.date
    data_version: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    prophet_version: str
    model_format: str
    model_bytes: int
    active: bool


@dataclass(frozen=True)
class NewModelVersion:
    """What training hands to the registry to store."""

    train_start: dt.date
    train_end: dt.date
    data_version: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    prophet_version: str
    model_format: str
    model_blob: bytes


class ModelRegistry:
    """Durable model versions in the store.

    Versions are numbered 1, 2, ... per product and never change once written.
    `create_version` writes the version and (by default) makes it active in one
    transaction, so a crash mid-training leaves either nothing or a complete,
    active version: never an active pointer to a half-written model. Safe to
    use from several threads and processes: a write locks the product's row
    first (PostgreSQL `FOR UPDATE`; SQLite's write transaction holds the whole
    database), so two trainings of one product finishing at once get two
    consecutive numbers, and an ingest of the product waits for the commit.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    def create_version(
        self, product_id: str, new: NewModelVersion, *, activate: bool = True
    ) -> ModelVersionInfo:
        """Store `new` as the product's next version; raises ProductNotFoundError."""
        return self._db.write(lambda session: _create(session, product_id, new, activate))

    def list_versions(self, product_id: str) -> list[ModelVersionInfo]:
        """All versions of a product, oldest first; raises ProductNotFoundError."""
        columns = _metadata_columns()
        with self._db.session() as session:
            active = _get_product(session, product_id).active_version
            rows = session.execute(
                select(*columns)
                .where(ModelVersion.product_id == product_id)
                .order_by(ModelVersion.version)
            ).all()
        return [_info_from_row(row, active) for row in rows]

    def get_version(self, product_id: str, version: int) -> ModelVersionInfo:
        """One version's metadata; raises ProductNotFoundError or ModelVersionNotFoundError."""
        _require_storable(product_id, version)
        with self._db.session() as session:
            active = _get_product(session, product_id).active_version
            row = session.execute(
                select(*_metadata_columns()).where(
                    ModelVersion.product_id == product_id, ModelVersion.version == version
                )
            ).first()
        if row is None:
            raise ModelVersionNotFoundError(product_id, version)
        return _info_from_row(row, active)

    def get_active_version(self, product_id: str) -> int | None:
        """The active version number, None when none; raises ProductNotFoundError.

        Read on every forecast request, so it uses the store's fast read path.
        """
        row = self._db.read_scalar(_ACTIVE_VERSION, {"product_id": product_id})
        if row is None:
            raise ProductNotFoundError(product_id)
        # -1 stands for "product exists, no active version" (NULL would look like no row)
        return None if row < 0 else int(row)

    async def aget_active_version(self, product_id: str) -> int | None:
        """As `get_active_version`, for an event loop: on PostgreSQL the read joins the
        loop's next batch (`Database.read_scalar_batched`); on SQLite it is the same
        synchronous read."""
        if self._db.dialect != "postgresql":  # the batched read is psycopg's
            return self.get_active_version(product_id)
        row = await self._db.read_scalar_batched(_ACTIVE_VERSIONS, product_id)
        if row is None:
            raise ProductNotFoundError(product_id)
        return None if row < 0 else int(row)

    def activate(self, product_id: str, version: int) -> ModelVersionInfo:
        """Make an existing version active (promote or roll back). Idempotent."""
        _require_storable(product_id, version)

        def set_active(session: Session) -> None:
            _get_product(session, product_id, lock=True)
            exists = session.scalar(
                select(ModelVersion.version).where(
                    ModelVersion.product_id == product_id, ModelVersion.version == version
                )
            )
            if exists is None:
                raise ModelVersionNotFoundError(product_id, version)
            session.execute(
                update(Product).where(Product.id == product_id).values(active_version=version)
            )

        self._db.write(set_active)
        return self.get_version(product_id, version)

    def get_model_blob(self, product_id: str, version: int) -> bytes:
        """The stored model bytes of one version; raises ModelVersionNotFoundError."""
        _require_storable(product_id, version)
        with self._db.session() as session:
            blob = session.scalar(
                select(ModelVersion.model_blob).where(
                    ModelVersion.product_id == product_id, ModelVersion.version == version
                )
            )
        if blob is None:
            raise ModelVersionNotFoundError(product_id, version)
        return blob


_ACTIVE_VERSION = select(func.coalesce(Product.active_version, -1)).where(
    Product.id == bindparam("product_id")
)
_ACTIVE_VERSIONS = select(Product.id, func.coalesce(Product.active_version, -1)).where(
    Product.id == any_(bindparam("keys"))
)


def _create(
    session: Session, product_id: str, new: NewModelVersion, activate: bool
) -> ModelVersionInfo:
    product = _get_product(session, product_id, lock=True)
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.product_id == product_id)
    )
    row = ModelVersion(
        product_id=product_id,
        version=(latest or 0) + 1,
        created_at=dt.datetime.now(dt.UTC),
        train_start=new.train_start,
        train_end=new.train_end,
        data_version=new.data_version,
        params=new.params,
        metrics=new.metrics,
        prophet_version=new.prophet_version,
        model_format=new.model_format,
        model_blob=new.model_blob,
    )
    session.add(row)
    session.flush()
    if activate:
        product.active_version = row.version
    return _info(row, active=activate, model_bytes=len(new.model_blob))


def _require_storable(product_id: str, version: int) -> None:
    if not 1 <= version <= MAX_VERSION:
        raise ModelVersionNotFoundError(product_id, version)


def _get_product(session: Session, product_id: str, *, lock: bool = False) -> Product:
    product = session.get(Product, product_id, with_for_update=lock)
    if product is None:
        raise ProductNotFoundError(product_id)
    return product


def _metadata_columns() -> tuple[Any, ...]:
    return (
        ModelVersion.product_id,
        ModelVersion.version,
        ModelVersion.created_at,
        ModelVersion.train_start,
        ModelVersion.train_end,
        ModelVersion.data_version,
        ModelVersion.params,
        ModelVersion.metrics,
        ModelVersion.prophet_version,
        ModelVersion.model_format,
        func.length(ModelVersion.model_blob).label("model_bytes"),
    )


def _info_from_row(row: Any, active: int | None) -> ModelVersionInfo:
    fields = row._asdict()
    fields["created_at"] = _aware(fields["created_at"])
    return ModelVersionInfo(**fields, active=fields["version"] == active)


def _info(row: ModelVersion, *, active: bool, model_bytes: int) -> ModelVersionInfo:
    return ModelVersionInfo(
        product_id=row.product_id,
        version=row.version,
        created_at=_aware(row.created_at),
        train_start=row.train_start,
        train_end=row.train_end,
        data_version=row.data_version,
        params=row.params,
        metrics=row.metrics,
        prophet_version=row.prophet_version,
        model_format=row.model_format,
        model_bytes=model_bytes,
        active=active,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes even for timezone=True columns; we only store UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
