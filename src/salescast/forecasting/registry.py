"""ModelRegistry: immutable, numbered model versions per product, one of them active (maybe pinned).

Past 300 lines: it is the one place that writes `model_versions` and the
product's active pointer, and every write here shares the same row lock and
invariants (a pinned version stays active, the active one is never deleted,
numbers are never given twice); split, each piece would repeat them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, any_, bindparam, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from salescast.forecasting.activation import ActivationRule, ActiveModel
from salescast.forecasting.errors import ModelVersionInUseError, ModelVersionNotFoundError
from salescast.store import Database, ProductNotFoundError
from salescast.store.schema import BATCH_ID_MAX_LENGTH, ModelVersion, Product

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
    pinned: bool = False  # active, and activated by hand: trainings leave it active
    not_activated_reason: str | None = None  # why the training that stored it did not activate it
    batch_id: str | None = None  # the bulk training (job id) that stored it; None when alone


@dataclass(frozen=True)
class BatchVersion:
    """What `store_batch_version` did: `info` is the product's version of the batch, new or
    `already_stored` by an earlier delivery of the same batch's result."""

    info: ModelVersionInfo
    already_stored: bool


@dataclass(frozen=True)
class TrainingMark:
    """What a bulk training needs to know to skip a product: its data now, and its newest
    version's data version and parameters (None when it has no version)."""

    product_id: str
    data_version: int
    latest_version: int | None
    latest_data_version: int | None
    latest_params: dict[str, Any] | None


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


@dataclass(frozen=True)
class ModelCounts:
    """What `/metrics` tells of the registry: counted by the store, so every process agrees."""

    active: int  # products with an active version
    worse_than_naive: int  # of those: backtest MASE above seasonal-naive's
    trained: int  # versions ever numbered (never given twice: deletions don't lower it)


class ModelRegistry:
    """Durable model versions in the store.

    Versions are numbered 1, 2, ... per product and never change once written;
    a number is never given twice, not even after its version was deleted
    (the product keeps the highest number given). `create_version` writes the
    version and decides its activation in one transaction, so a crash
    mid-training leaves either nothing or a complete version: never an active
    pointer to a half-written model. Safe to use from several threads and
    processes: a write locks the product's row first (PostgreSQL `FOR UPDATE`;
    SQLite's write transaction holds the whole database), so two trainings of
    one product finishing at once get two consecutive numbers, an ingest of
    the product waits for the commit, and a hand activation cannot slip
    between a training's look at the active version and its write.

    Pinning: `activate` (a hand activation) pins the version it activates;
    while pinned, `create_version` stores versions without activating them.
    `unpin` lets trainings activate again; so does activating another version
    (which pins that one). The active version, pinned or not, cannot be
    deleted (`ModelVersionInUseError`).
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    def create_version(
        self,
        product_id: str,
        new: NewModelVersion,
        *,
        activate: bool = True,
        rule: ActivationRule | None = None,
    ) -> ModelVersionInfo:
        """Store `new` as the product's next version; raises ProductNotFoundError.

        It becomes active when `activate` is true, the product's active version
        is not pinned, and `rule` (when given) finds no reason against it;
        otherwise the version's `not_activated_reason` says why not. The
        decision reads the active version inside the write transaction.
        """
        return self._db.write(
            lambda session: _create(session, product_id, new, activate, rule, None)
        ).info

    def store_batch_version(
        self,
        product_id: str,
        new: NewModelVersion,
        *,
        batch_id: str,
        rule: ActivationRule | None = None,
    ) -> BatchVersion:
        """As `create_version`, at most once per (product, batch): idempotent on the pair.

        When the product already has a version of `batch_id` (the batch's
        result for it arrived twice: a retried task, a worker that died after
        training it), nothing is written and that version is returned with
        `already_stored=True`, whatever `new` holds: the first delivery won.
        The check runs under the product's row lock, and the store's unique
        index on (product_id, batch_id) backs it, so two writers of one batch
        cannot both insert (the loser's IntegrityError is read as "already
        stored"). Raises ProductNotFoundError.
        """
        if not batch_id or len(batch_id) > BATCH_ID_MAX_LENGTH:
            raise ValueError(f"a batch id is 1 to {BATCH_ID_MAX_LENGTH} characters: {batch_id!r}")
        try:
            return self._db.write(
                lambda session: _create(session, product_id, new, True, rule, batch_id)
            )
        except IntegrityError:
            with self._db.session() as session:
                existing = _batch_version(session, product_id, batch_id)
            if existing is None:  # the constraint that failed was another one
                raise
            return existing

    def model_counts(self) -> ModelCounts:
        """Active versions, those worse than seasonal-naive, and versions ever trained."""
        mase = ModelVersion.metrics["mase"].as_float()
        naive = ModelVersion.metrics["mase_seasonal_naive"].as_float()
        active = (
            select(func.count(), func.coalesce(func.sum(case((mase > naive, 1), else_=0)), 0))
            .select_from(Product)
            .join(
                ModelVersion,
                and_(
                    ModelVersion.product_id == Product.id,
                    ModelVersion.version == Product.active_version,
                ),
            )
        )
        trained = select(func.coalesce(func.sum(Product.last_model_version), 0))
        with self._db.session() as session:
            count, worse = session.execute(active).one()
            return ModelCounts(int(count), int(worse), int(session.scalar(trained) or 0))

    def list_versions(self, product_id: str) -> list[ModelVersionInfo]:
        """All versions of a product, oldest first; raises ProductNotFoundError."""
        columns = _metadata_columns()
        with self._db.session() as session:
            product = _get_product(session, product_id)
            rows = session.execute(
                select(*columns)
                .where(ModelVersion.product_id == product_id)
                .order_by(ModelVersion.version)
            ).all()
        return [_info_from_row(row, product) for row in rows]

    def get_version(self, product_id: str, version: int) -> ModelVersionInfo:
        """One version's metadata; raises ProductNotFoundError or ModelVersionNotFoundError."""
        _require_storable(product_id, version)
        with self._db.session() as session:
            product = _get_product(session, product_id)
            row = session.execute(
                select(*_metadata_columns()).where(
                    ModelVersion.product_id == product_id, ModelVersion.version == version
                )
            ).first()
        if row is None:
            raise ModelVersionNotFoundError(product_id, version)
        return _info_from_row(row, product)

    def get_trained_at(self, product_id: str, version: int) -> dt.datetime:
        """When the version was stored (its `created_at`, UTC): fixed for the version's
        life, so forecasts name it as their `generated_at`. One indexed read; raises
        ModelVersionNotFoundError (also for an unknown product)."""
        created_at: dt.datetime = self._version_column(product_id, version, ModelVersion.created_at)
        return _aware(created_at)

    def get_metrics(self, product_id: str, version: int) -> dict[str, Any]:
        """The version's stored metrics (backtest scores, interval calibration); one indexed
        read, made when a forecast is computed. Raises ModelVersionNotFoundError."""
        metrics: dict[str, Any] = self._version_column(product_id, version, ModelVersion.metrics)
        return metrics

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

    def list_active_versions(self) -> dict[str, int | None]:
        """Every product's active version (None when it has none), in one query, by id."""
        query = select(Product.id, Product.active_version).order_by(Product.id)
        with self._db.session() as session:
            return {row.id: row.active_version for row in session.execute(query)}

    def activate(self, product_id: str, version: int) -> ModelVersionInfo:
        """Make an existing version active and pin it (a hand promotion or rollback).

        Idempotent. Raises ProductNotFoundError or ModelVersionNotFoundError,
        changing nothing.
        """
        _require_storable(product_id, version)

        def set_active(session: Session) -> None:
            _get_product(session, product_id, lock=True)
            _require_version(session, product_id, version)
            session.execute(
                update(Product)
                .where(Product.id == product_id)
                .values(active_version=version, pinned=True)
            )

        self._db.write(set_active)
        return self.get_version(product_id, version)

    def unpin(self, product_id: str) -> int | None:
        """Let trainings activate new versions again; the active version stays active until
        then. Returns the active version (None when none). Idempotent; raises
        ProductNotFoundError."""

        def clear(session: Session) -> int | None:
            product = _get_product(session, product_id, lock=True)
            product.pinned = False
            return product.active_version

        return self._db.write(clear)

    def delete_version(self, product_id: str, version: int) -> None:
        """Remove one version that is not active (nor, therefore, pinned).

        Raises ProductNotFoundError, ModelVersionNotFoundError or
        ModelVersionInUseError, deleting nothing. Its number is never given again.
        """
        _require_storable(product_id, version)

        def remove(session: Session) -> None:
            product = _get_product(session, product_id, lock=True)
            _require_version(session, product_id, version)
            if version == product.active_version:
                raise ModelVersionInUseError(product_id, version, pinned=product.pinned)
            session.execute(_delete_versions(product_id, [version]))

        self._db.write(remove)

    def prune(self, product_id: str, *, keep: int) -> list[int]:
        """Delete all but the `keep` newest versions, never the active one; returns the
        numbers deleted, oldest first. Raises ValueError for `keep` < 1 and
        ProductNotFoundError, deleting nothing."""
        if keep < 1:
            raise ValueError(
                f"keep must be at least 1 (the newest version is always kept), got {keep}"
            )

        def remove(session: Session) -> list[int]:
            product = _get_product(session, product_id, lock=True)
            numbers = session.scalars(
                select(ModelVersion.version)
                .where(ModelVersion.product_id == product_id)
                .order_by(ModelVersion.version.desc())
            ).all()
            doomed = sorted(v for v in numbers[keep:] if v != product.active_version)
            if doomed:
                session.execute(_delete_versions(product_id, doomed))
            return doomed

        return self._db.write(remove)

    def list_training_marks(self) -> dict[str, TrainingMark]:
        """Every product's data version and its newest version's data version and parameters,
        in one query: what a bulk training reads to find the products it may skip."""
        latest = (
            select(ModelVersion.product_id, func.max(ModelVersion.version).label("version"))
            .group_by(ModelVersion.product_id)
            .subquery()
        )
        query = (
            select(
                Product.id,
                Product.data_version,
                ModelVersion.version,
                ModelVersion.data_version,
                ModelVersion.params,
            )
            .select_from(Product)
            .outerjoin(latest, latest.c.product_id == Product.id)
            .outerjoin(
                ModelVersion,
                and_(
                    ModelVersion.product_id == latest.c.product_id,
                    ModelVersion.version == latest.c.version,
                ),
            )
        )
        with self._db.session() as session:
            rows = session.execute(query).all()
        return {
            product: TrainingMark(
                product,
                data_version,
                latest,
                latest_data,
                None if params is None else _stored_params(params),
            )
            for product, data_version, latest, latest_data, params in rows
        }

    def get_model_blob(self, product_id: str, version: int) -> bytes:
        """The stored model bytes of one version; raises ModelVersionNotFoundError."""
        blob: bytes = self._version_column(product_id, version, ModelVersion.model_blob)
        return blob

    def _version_column(self, product_id: str, version: int, column: Any) -> Any:
        """One column of one stored version; raises ModelVersionNotFoundError."""
        _require_storable(product_id, version)
        with self._db.session() as session:
            value = session.scalar(
                select(column).where(
                    ModelVersion.product_id == product_id, ModelVersion.version == version
                )
            )
        if value is None:
            raise ModelVersionNotFoundError(product_id, version)
        return value


_ACTIVE_VERSION = select(func.coalesce(Product.active_version, -1)).where(
    Product.id == bindparam("product_id")
)
_ACTIVE_VERSIONS = select(Product.id, func.coalesce(Product.active_version, -1)).where(
    Product.id == any_(bindparam("keys"))
)


def _create(
    session: Session,
    product_id: str,
    new: NewModelVersion,
    activate: bool,
    rule: ActivationRule | None,
    batch_id: str | None,
) -> BatchVersion:
    product = _get_product(session, product_id, lock=True)
    if batch_id is not None:
        existing = _batch_version(session, product_id, batch_id, product=product)
        if existing is not None:
            return existing
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.product_id == product_id)
    )
    # The product's counter, so a deleted version's number is not given again;
    # the stored maximum too, in case a row was written around the counter.
    number = max(product.last_model_version, latest or 0) + 1
    reason = _refusal(session, product, new, activate, rule)
    row = ModelVersion(
        product_id=product_id,
        version=number,
        created_at=dt.datetime.now(dt.UTC),
        train_start=new.train_start,
        train_end=new.train_end,
        data_version=new.data_version,
        params=new.params,
        metrics=new.metrics,
        prophet_version=new.prophet_version,
        model_format=new.model_format,
        model_blob=new.model_blob,
        not_activated_reason=reason,
        batch_id=batch_id,
    )
    session.add(row)
    session.flush()
    product.last_model_version = number
    if reason is None:
        product.active_version = row.version
    info = _info(row, active=reason is None, model_bytes=len(new.model_blob))
    return BatchVersion(info, already_stored=False)


def _batch_version(
    session: Session, product_id: str, batch_id: str, *, product: Product | None = None
) -> BatchVersion | None:
    row = session.execute(
        select(*_metadata_columns()).where(
            ModelVersion.product_id == product_id, ModelVersion.batch_id == batch_id
        )
    ).first()
    if row is None:
        return None
    owner = product if product is not None else _get_product(session, product_id)
    return BatchVersion(_info_from_row(row, owner), already_stored=True)


def _refusal(
    session: Session,
    product: Product,
    new: NewModelVersion,
    activate: bool,
    rule: ActivationRule | None,
) -> str | None:
    """Why the version being stored must not become active; None to activate it."""
    if not activate:
        return "stored without activating it (activate=False)"
    active = product.active_version
    if active is not None and product.pinned:
        return (
            f"version {active} is pinned (activated by hand); unpin it "
            f"(POST /products/{product.id}/models/unpin or `salescast models unpin "
            f"{product.id}`) to let trainings activate new versions"
        )
    if rule is None:
        return None
    if active is None:  # the first version: the rule activates it
        return rule.refusal(new.metrics, None)
    metrics = session.scalar(
        select(ModelVersion.metrics).where(
            ModelVersion.product_id == product.id, ModelVersion.version == active
        )
    )
    return rule.refusal(new.metrics, None if metrics is None else ActiveModel(active, metrics))


def _require_version(session: Session, product_id: str, version: int) -> None:
    exists = session.scalar(
        select(ModelVersion.version).where(
            ModelVersion.product_id == product_id, ModelVersion.version == version
        )
    )
    if exists is None:
        raise ModelVersionNotFoundError(product_id, version)


def _delete_versions(product_id: str, versions: list[int]) -> Any:
    return delete(ModelVersion).where(
        ModelVersion.product_id == product_id, ModelVersion.version.in_(versions)
    )


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
        ModelVersion.not_activated_reason,
        ModelVersion.batch_id,
    )


def _info_from_row(row: Any, product: Product) -> ModelVersionInfo:
    fields = row._asdict()
    fields["created_at"] = _aware(fields["created_at"])
    fields["params"] = _stored_params(fields["params"])
    active = fields["version"] == product.active_version
    return ModelVersionInfo(**fields, active=active, pinned=active and product.pinned)


def _info(row: ModelVersion, *, active: bool, model_bytes: int) -> ModelVersionInfo:
    return ModelVersionInfo(
        product_id=row.product_id,
        version=row.version,
        created_at=_aware(row.created_at),
        train_start=row.train_start,
        train_end=row.train_end,
        data_version=row.data_version,
        params=_stored_params(row.params),
        metrics=row.metrics,
        prophet_version=row.prophet_version,
        model_format=row.model_format,
        model_bytes=model_bytes,
        active=active,
        not_activated_reason=row.not_activated_reason,
        batch_id=row.batch_id,
    )


# Versions stored before a training setting existed were trained with this value of it:
# every one before fit_backend was fitted by CmdStan.
_PARAMS_OF_OLD_VERSIONS: dict[str, Any] = {"fit_backend": "cmdstan"}


def _stored_params(params: dict[str, Any]) -> dict[str, Any]:
    """A version's stored training parameters, the fields older versions lack filled in.

    So a version says how it was fitted, and a bulk training sees an old CmdStan
    version as trained with other settings than the numpy default (it retrains it once).
    """
    return {**_PARAMS_OF_OLD_VERSIONS, **params}


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes even for timezone=True columns; we only store UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
