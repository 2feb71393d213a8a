"""Training and the registry: new versions, activation, pins, deletion, and the cache after each."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from salescast.cache import TieredCache
from salescast.config import Settings
from salescast.forecasting import (
    ActivationRule,
    ModelRegistry,
    ModelVersionInfo,
    NewModelVersion,
    NoActiveModelError,
    TrainingParams,
)
from salescast.forecasting.batch import (
    TrainingOutcome,
    TrainingTask,
    build_version,
    train_many,
    version_params,
)
from salescast.forecasting.dask_batch import DaskScheduler, dask_client, train_on_dask
from salescast.forecasting.freshness import unchanged_reason
from salescast.forecasting.model_codec import decode_model
from salescast.service.models import ModelService
from salescast.service.product_cache import invalidate_products
from salescast.service.sales import SalesService
from salescast.store import SalesStore

logger = logging.getLogger("salescast")


TrainingOutcomeKind = Literal["activated", "not_activated", "skipped", "failed"]


@dataclass(frozen=True)
class TrainingSummary:
    """One product's line in a batch training report.

    `outcome`: a new version was stored and activated, stored and left
    inactive (`reason` says why: pinned, or a worse backtest), not trained
    since nothing changed (`reason` says since which version), or failed
    (`error`). `version` and `metrics` are those of the new version, if any.
    `note` says what happened on the way, if anything did (on a Dask cluster:
    rescheduled after its worker died).
    """

    product_id: str
    version: int | None
    error: str | None
    metrics: dict[str, Any] | None
    outcome: TrainingOutcomeKind = "activated"
    reason: str | None = None
    note: str | None = None

    @classmethod
    def of_version(cls, info: ModelVersionInfo, note: str | None = None) -> TrainingSummary:
        outcome: TrainingOutcomeKind = "activated" if info.active else "not_activated"
        return cls(
            info.product_id,
            info.version,
            None,
            info.metrics,
            outcome,
            info.not_activated_reason,
            note,
        )


ProgressCallback = Callable[[int, int, TrainingSummary], None]
TaskRunner = Callable[[Iterable[TrainingTask], Callable[[TrainingOutcome], None]], None]


class TrainingService:
    """Train, store versions and decide their activation; each change refreshes the cache.

    A new version is activated unless the product's active version is pinned
    or the margin rule (`ActivationRule`) finds its backtest worse. A new
    active version is written through to the `model` namespace (see
    `_write_through_model`), so the first forecast after a retrain or a
    rollback computes its prediction from a cached model instead of decoding
    the model from the store in the request. With `keep_versions`, each
    training prunes the product's older versions.
    """

    def __init__(
        self,
        *,
        store: SalesStore,
        registry: ModelRegistry,
        cache: TieredCache,
        sales: SalesService,
        models: ModelService,
        params: TrainingParams,
        rule: ActivationRule | None = None,
        keep_versions: int = 0,
    ) -> None:
        self._store = store
        self._registry = registry
        self._cache = cache
        self._sales = sales
        self._models = models
        self._params = params
        self._rule = rule or ActivationRule()
        self._keep_versions = keep_versions

    def train_product(self, product_id: str) -> ModelVersionInfo:
        """Train and store a new version, activated unless pinned or worse (see the class);
        raises InsufficientHistoryError. A single product is trained even if unchanged."""
        version = build_version(self._training_task(product_id), self._params)
        return self._store_version(product_id, version)

    def train_products(
        self,
        product_ids: Sequence[str] | None = None,
        *,
        force: bool = False,
        jobs: int = 1,
        scheduler: DaskScheduler | None = None,
        batch_id: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> list[TrainingSummary]:
        """Train the listed products (all when None) as one batch: on the Dask cluster of
        `scheduler` when given, else `jobs` local processes at a time.

        Unless `force`, a product whose data and training settings have not
        changed since its newest version was trained is skipped, and reported
        so (`outcome="skipped"`, see `forecasting.freshness`). A product that
        cannot be trained (too little history, a failed fit, its Dask workers
        dying) is reported in its summary and does not stop the others.

        Every version is stored under `batch_id` (a job's id; a fresh one when
        None), at most one per product (`ModelRegistry.store_batch_version`), and
        each product is reported once, in completion order. Results are written
        here whoever trained them (see `forecasting.dask_batch`). A scheduler
        that cannot be reached raises SchedulerUnavailableError before anything
        is trained or reported: never a quiet fallback to the local pool.
        """
        ids = self._sales.resolve_products(product_ids)  # unknown ids fail before any work starts
        batch = batch_id or uuid.uuid4().hex
        summaries: list[TrainingSummary] = []
        reported: set[str] = set()

        def report(summary: TrainingSummary) -> None:
            if summary.product_id in reported:  # a result delivered twice counts once
                return
            reported.add(summary.product_id)
            summaries.append(summary)
            if on_progress is not None:
                on_progress(len(summaries), len(ids), summary)

        with self._runner(scheduler, jobs=jobs, batch_id=batch) as run:
            skipped = {} if force else self._unchanged(ids)
            for product_id, reason in skipped.items():
                report(TrainingSummary(product_id, None, None, None, "skipped", reason))
            tasks = (self._training_task(p) for p in ids if p not in skipped)
            run(tasks, lambda outcome: report(self._record_outcome(outcome, batch)))
        return summaries

    @contextmanager
    def _runner(
        self, scheduler: DaskScheduler | None, *, jobs: int, batch_id: str
    ) -> Iterator[TaskRunner]:
        """What trains the batch's tasks: the cluster (connected first) or the local pool."""
        if scheduler is None:
            yield lambda tasks, on_outcome: train_many(
                tasks, self._params, jobs=jobs, on_outcome=on_outcome
            )
            return
        with dask_client(scheduler) as client:
            yield lambda tasks, on_outcome: train_on_dask(
                client, tasks, self._params, batch_id=batch_id, on_outcome=on_outcome
            )

    def _unchanged(self, product_ids: Sequence[str]) -> dict[str, str]:
        marks = self._registry.list_training_marks()
        frequencies = {p.product_id: p.frequency for p in self._store.list_products()}
        reasons = {}
        for product_id in product_ids:
            mark = marks.get(product_id)
            params = version_params(self._params, frequencies.get(product_id, "D"))
            reason = None if mark is None else unchanged_reason(mark, params)
            if reason is not None:
                reasons[product_id] = reason
        return reasons

    def _record_outcome(self, outcome: TrainingOutcome, batch_id: str) -> TrainingSummary:
        product_id = outcome.product_id
        if outcome.version is None:
            return TrainingSummary(
                product_id, None, outcome.error, None, "failed", note=outcome.note
            )
        stored = self._registry.store_batch_version(
            product_id, outcome.version, batch_id=batch_id, rule=self._rule
        )
        if not stored.already_stored:  # the cache was refreshed when it was stored
            self._after_store(product_id, stored.info, outcome.version.model_blob)
        return TrainingSummary.of_version(stored.info, outcome.note)

    def _store_version(self, product_id: str, new: NewModelVersion) -> ModelVersionInfo:
        info = self._registry.create_version(product_id, new, rule=self._rule)
        self._after_store(product_id, info, new.model_blob)
        return info

    def _after_store(self, product_id: str, info: ModelVersionInfo, blob: bytes) -> None:
        """Prune, then refresh the cache, once per stored version."""
        pruned = self._auto_prune(product_id)
        if info.active:
            self._refresh_cache(product_id, info.version, blob)
        elif pruned:
            self._refresh_cache(product_id, self._registry.get_active_version(product_id))
        # A version stored inactive changes nothing a read can see: the active
        # version's cached models and forecasts stay valid, and are kept.

    def _auto_prune(self, product_id: str) -> list[int]:
        if not self._keep_versions:
            return []
        try:
            return self._registry.prune(product_id, keep=self._keep_versions)
        except Exception:  # the version is stored: an unpruned old one costs only space
            logger.warning("model %s: pruning old versions failed", product_id, exc_info=True)
            return []

    def _training_task(self, product_id: str) -> TrainingTask:
        # The data version is read before the history: if an ingest lands in
        # between, the model is labelled with the older version, never newer.
        data_version = self._store.get_data_version(product_id)
        days, quantities = self._store.get_series(product_id)
        frequency = self._store.get_frequency(product_id)
        return TrainingTask(product_id, days, quantities, data_version, frequency)

    def list_models(self, product_id: str) -> list[ModelVersionInfo]:
        return self._registry.list_versions(product_id)

    def activate_model(self, product_id: str, version: int) -> ModelVersionInfo:
        """Promote or roll back, pinning the version; the product's cached entries go at
        once, everywhere."""
        info = self._registry.activate(product_id, version)
        self._refresh_cache(product_id, version)
        return info

    def unpin_model(self, product_id: str) -> ModelVersionInfo:
        """Let trainings activate new versions again; returns the (still) active version.

        Raises ProductNotFoundError, or NoActiveModelError when nothing is active
        (the product stays as it was). Nothing cached changes: the active version does not.
        """
        active = self._registry.unpin(product_id)
        if active is None:
            raise NoActiveModelError(product_id)
        return self._registry.get_version(product_id, active)

    def delete_model(self, product_id: str, version: int) -> None:
        """Remove a version that is not active; its cached models and forecasts go too.

        Raises ProductNotFoundError, ModelVersionNotFoundError, ModelVersionInUseError.
        """
        self._registry.delete_version(product_id, version)
        self._refresh_cache(product_id, self._registry.get_active_version(product_id))

    def prune_models(self, product_ids: Sequence[str] | None, *, keep: int) -> dict[str, list[int]]:
        """Keep each listed product's `keep` newest versions and its active one; returns the
        numbers deleted per product. ValueError (keep < 1) or ProductNotFoundError before
        anything is deleted."""
        if keep < 1:
            raise ValueError(f"keep must be at least 1 (the newest version is kept), got {keep}")
        deleted = {}
        for product_id in self._sales.resolve_products(product_ids):
            deleted[product_id] = self._registry.prune(product_id, keep=keep)
            if deleted[product_id]:
                self._refresh_cache(product_id, self._registry.get_active_version(product_id))
        return deleted

    def _refresh_cache(
        self, product_id: str, active_version: int | None, blob: bytes | None = None
    ) -> None:
        """After a change of the product's versions: drop its entries everywhere (the
        versions they were computed from may be gone or superseded), then write the
        active model through."""
        invalidate_products(self._cache, [product_id])
        if active_version is not None:
            self._write_through_model(product_id, active_version, blob)

    def _write_through_model(
        self, product_id: str, version: int, blob: bytes | None = None
    ) -> None:
        """Put the decoded model of a just-activated `version` into the `model` namespace.

        Called after the version is committed as active in the store *and*
        after the product's tag was invalidated: the entry goes under the new
        version and the tag's new generation, exactly where the next forecast
        looks (primed before the invalidation, it would be unreachable at
        once). The value is what a miss would compute (`ModelService.decode`,
        from `blob` when the caller holds it, else from the registry), so a
        later rollback or retrain can only make it unreachable, never wrong.

        It does not also compute the default forecast: that is one Prophet
        prediction per trained product, run serially in the process that
        records versions (often the API server), for +0.6 percentage points of
        prediction hit rate at 1 req/s in `bench/hit_rates.py` (+0.1 at
        10 req/s; an upper bound, as every simulated forecast asks for the
        default horizon), and at 1 req/s about 60 % of them expire unread.

        A failure here is logged, not raised: the version is committed and
        active already, and an entry missing from the cache costs one miss.
        """
        try:
            model = (
                decode_model(blob) if blob is not None else self._models.decode(product_id, version)
            )
            self._models.prime(model, product_id, version)
        except Exception:
            logger.warning(
                "model %s v%d: writing it through to the cache failed; the next forecast "
                "loads it from the store",
                product_id,
                version,
                exc_info=True,
            )


def dask_scheduler_from(settings: Settings, *, named_by: str | None = None) -> DaskScheduler | None:
    """The cluster bulk trainings run on, None for the local pool (the setting unset)."""
    if settings.dask_scheduler is None:
        return None
    return DaskScheduler(
        settings.dask_scheduler,
        named_by=named_by or "SALESCAST_DASK_SCHEDULER",
        connect_timeout_seconds=settings.dask_connect_timeout_seconds,
    )


def training_params_from(settings: Settings) -> TrainingParams:
    return TrainingParams(
        holidays_country=settings.holidays_country,
        interval_width=settings.interval_width,
        seasonality_mode=settings.seasonality_mode,
        yearly_seasonality=settings.yearly_seasonality,
        weekly_seasonality=settings.weekly_seasonality,
        holdout_days=settings.holdout_days,
        min_history_days=settings.min_history_days,
        uncertainty_samples=settings.uncertainty_samples,
        holdout_weeks=settings.holdout_weeks,
        min_history_weeks=settings.min_history_weeks,
        holdout_months=settings.holdout_months,
        min_history_months=settings.min_history_months,
        fit_backend=settings.fit_backend,
        backtest_windows=settings.backtest_windows,
        calibrate_intervals=settings.calibrate_intervals,
        select_candidates=settings.select_candidates,
    )
