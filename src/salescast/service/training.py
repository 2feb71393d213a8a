"""Training and the registry: new versions, activation, and writing the active model through."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from salescast.cache import TieredCache
from salescast.config import Settings
from salescast.forecasting import ModelRegistry, ModelVersionInfo, TrainingParams
from salescast.forecasting.batch import TrainingOutcome, TrainingTask, build_version, train_many
from salescast.forecasting.model_codec import decode_model
from salescast.service.models import ModelService
from salescast.service.product_cache import invalidate_products
from salescast.service.sales import SalesService
from salescast.store import SalesStore

logger = logging.getLogger("salescast")


@dataclass(frozen=True)
class TrainingSummary:
    """One product's line in a batch training report."""

    product_id: str
    version: int | None
    error: str | None
    metrics: dict[str, Any] | None


ProgressCallback = Callable[[int, int, TrainingSummary], None]


class TrainingService:
    """Train, store versions and activate them; each change invalidates the product's entries.

    A new active version is written through to the `model` namespace (see
    `_write_through_model`), so the first forecast after a retrain or a
    rollback computes its prediction from a cached model instead of decoding
    the model from the store in the request.
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
    ) -> None:
        self._store = store
        self._registry = registry
        self._cache = cache
        self._sales = sales
        self._models = models
        self._params = params

    def train_product(self, product_id: str) -> ModelVersionInfo:
        """Train, store a new version and make it active; raises InsufficientHistoryError."""
        version = build_version(self._training_task(product_id), self._params)
        info = self._registry.create_version(product_id, version)
        invalidate_products(self._cache, [product_id])
        self._write_through_model(product_id, info.version, version.model_blob)
        return info

    def train_products(
        self,
        product_ids: Sequence[str] | None = None,
        *,
        jobs: int = 1,
        on_progress: ProgressCallback | None = None,
    ) -> list[TrainingSummary]:
        """Train the listed products (all when None), `jobs` processes at a time.

        A product that cannot be trained (too little history, a failed fit) is
        reported in its summary and does not stop the others.
        """
        ids = self._sales.resolve_products(product_ids)  # unknown ids fail before any work starts
        summaries: list[TrainingSummary] = []

        def record(outcome: TrainingOutcome) -> None:
            summary = self._record_outcome(outcome)
            summaries.append(summary)
            if on_progress is not None:
                on_progress(len(summaries), len(ids), summary)

        tasks = (self._training_task(product_id) for product_id in ids)
        train_many(tasks, self._params, jobs=jobs, on_outcome=record)
        return summaries

    def _record_outcome(self, outcome: TrainingOutcome) -> TrainingSummary:
        if outcome.version is None:
            return TrainingSummary(outcome.product_id, None, outcome.error, None)
        info = self._registry.create_version(outcome.product_id, outcome.version)
        invalidate_products(self._cache, [outcome.product_id])
        self._write_through_model(outcome.product_id, info.version, outcome.version.model_blob)
        return TrainingSummary(outcome.product_id, info.version, None, info.metrics)

    def _training_task(self, product_id: str) -> TrainingTask:
        # The data version is read before the history: if an ingest lands in
        # between, the model is labelled with the older version, never newer.
        data_version = self._store.get_data_version(product_id)
        days, quantities = self._store.get_series(product_id)
        return TrainingTask(product_id, days, quantities, data_version)

    def list_models(self, product_id: str) -> list[ModelVersionInfo]:
        return self._registry.list_versions(product_id)

    def activate_model(self, product_id: str, version: int) -> ModelVersionInfo:
        """Promote or roll back; the product's cached entries go at once, everywhere."""
        info = self._registry.activate(product_id, version)
        invalidate_products(self._cache, [product_id])
        self._write_through_model(product_id, version)
        return info

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
    )
