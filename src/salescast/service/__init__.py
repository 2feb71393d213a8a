"""The service layer: what HTTP, CLI and warm-up jobs call to ingest, train and forecast.

`SalescastService` is a facade over one store and one two-tier cache. It
builds the shared pieces (database, stores, cache, compute gate) and composes
one object per room, each in its own module with its own docstring:

- `sales.SalesService`: ingest, cached history, product listings, demo data;
- `models.ModelService`: active versions and cached, decoded models;
- `training.TrainingService`: train (skipping unchanged products), version,
  activate and pin, delete and prune, write-through;
- `forecasts.ForecastService`: cached predictions and the ETag-aware read;
- `plots.PlotService`: forecast charts (PNG, SVG), cached in namespace `plot`.

Composition rather than mixins, so each room names what it depends on in its
constructor and reads (and tests) on its own; the price is the one-line
delegations below, which keep every existing method of the facade and which
are where to look for the whole surface the API, CLI and bench use.

The expensive reads (history queries, model loading, prediction) are
cached in three namespaces, `data`, `model` and `prediction` (and the
charts drawn from them in `plot`). Their keys
carry the durable version they depend on, read from the store first: the
product's data version for history, the active model version for models
and forecasts. A retrain, an activation or an ingest changes that version
in the store, so the next read builds a new key and can never meet an
entry of the superseded version, in any worker, whatever Redis or pub/sub
do. The version is read *before* the value is computed, so an entry is
never labelled with a version newer than its content. Every change also
invalidates the product's tag, which reclaims the old entries in every
worker's L1 (pub/sub) and in Redis.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence, Set

from salescast.cache import TieredCache
from salescast.cache_factory import build_cache
from salescast.compute_gate import ComputeGate
from salescast.config import Settings
from salescast.forecasting import ActivationRule, Forecast, ModelRegistry, ModelVersionInfo
from salescast.forecasting.chart import ChartFormat
from salescast.forecasting.dask_batch import DaskScheduler
from salescast.service.forecasts import ForecastRead, ForecastService, forecast_etag
from salescast.service.models import LoadedModel, ModelService
from salescast.service.plots import PlotRead, PlotService
from salescast.service.product_cache import invalidate_products
from salescast.service.sales import History, SalesService
from salescast.service.training import (
    ProgressCallback,
    TrainingService,
    TrainingSummary,
    dask_scheduler_from,
    training_params_from,
)
from salescast.store import Database, SalesStore
from salescast.store.ingest import ColumnSpec
from salescast.store.sales import Frequency, IngestMode, IngestResult

__all__ = [
    "ForecastRead",
    "ForecastService",
    "History",
    "LoadedModel",
    "ModelService",
    "PlotRead",
    "PlotService",
    "ProgressCallback",
    "SalesService",
    "SalescastService",
    "TrainingService",
    "TrainingSummary",
    "dask_scheduler_from",
    "forecast_etag",
    "training_params_from",
]


class SalescastService:
    """Ingest, train, version and forecast, over one store, through one two-tier cache."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        cache: TieredCache | None = None,
    ) -> None:
        self.settings = settings
        self.database = database or Database(settings.database_url)
        self.store = SalesStore(self.database)
        self.registry = ModelRegistry(self.database)
        self.training_params = training_params_from(settings)
        self.cache = cache if cache is not None else build_cache(settings)
        self.gate = ComputeGate(
            max_running=settings.compute_max_running or os.cpu_count() or 2,
            max_waiting=settings.compute_max_waiting,
            max_wait_seconds=settings.compute_max_wait_seconds,
        )
        self.models = ModelService(settings, registry=self.registry, cache=self.cache)
        self.forecasts = ForecastService(
            settings,
            database=self.database,
            cache=self.cache,
            models=self.models,
            gate=self.gate,
            frequency_of=self.store.get_frequency,
        )
        self.sales = SalesService(settings, store=self.store, cache=self.cache)
        self.plots = PlotService(
            settings,
            store=self.store,
            cache=self.cache,
            models=self.models,
            forecasts=self.forecasts,
            sales=self.sales,
            gate=self.gate,
        )
        self.training = TrainingService(
            store=self.store,
            registry=self.registry,
            cache=self.cache,
            sales=self.sales,
            models=self.models,
            params=self.training_params,
            rule=ActivationRule(settings.activation_margin),
            keep_versions=settings.keep_versions,
        )

    def close(self) -> None:
        self.cache.close()
        self.database.dispose()

    def __enter__(self) -> SalescastService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the cache (its Redis connections and subscriber) and the store's pool."""
        self.close()

    def invalidate_products(self, product_ids: Iterable[str]) -> None:
        """Drop every cached entry of these products, in every worker (pub/sub) and in Redis."""
        invalidate_products(self.cache, product_ids)

    # --- sales (SalesService)

    def ingest_csv(
        self,
        data: bytes,
        *,
        columns: ColumnSpec,
        mode: IngestMode = "append",
        freq: str | None = None,
    ) -> IngestResult:
        return self.sales.ingest_csv(data, columns=columns, mode=mode, freq=freq)

    def ingest_rows(
        self,
        rows: object,
        *,
        columns: ColumnSpec,
        mode: IngestMode = "append",
        freq: str | None = None,
    ) -> IngestResult:
        return self.sales.ingest_rows(rows, columns=columns, mode=mode, freq=freq)

    def get_history(
        self,
        product_id: str,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        freq: Frequency = "D",
    ) -> History:
        return self.sales.get_history(product_id, start=start, end=end, freq=freq)

    def list_product_ids(self) -> list[str]:
        return self.sales.list_product_ids()

    def resolve_products(self, product_ids: Sequence[str] | None) -> list[str]:
        return self.sales.resolve_products(product_ids)

    def list_untrained_product_ids(self) -> list[str]:
        return self.sales.list_untrained_product_ids()

    def load_demo_if_empty(self) -> IngestResult | None:
        return self.sales.load_demo_if_empty()

    # --- training and the registry (TrainingService)

    def train_product(self, product_id: str) -> ModelVersionInfo:
        return self.training.train_product(product_id)

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
        return self.training.train_products(
            product_ids,
            force=force,
            jobs=jobs,
            scheduler=scheduler,
            batch_id=batch_id,
            on_progress=on_progress,
        )

    def list_models(self, product_id: str) -> list[ModelVersionInfo]:
        return self.training.list_models(product_id)

    def activate_model(self, product_id: str, version: int) -> ModelVersionInfo:
        return self.training.activate_model(product_id, version)

    def unpin_model(self, product_id: str) -> ModelVersionInfo:
        return self.training.unpin_model(product_id)

    def delete_model(self, product_id: str, version: int) -> None:
        self.training.delete_model(product_id, version)

    def prune_models(self, product_ids: Sequence[str] | None, *, keep: int) -> dict[str, list[int]]:
        return self.training.prune_models(product_ids, keep=keep)

    # --- models (ModelService)

    def get_active_version(self, product_id: str) -> int:
        return self.models.get_active_version(product_id)

    async def aget_active_version(self, product_id: str) -> int:
        return await self.models.aget_active_version(product_id)

    def load_model(self, product_id: str) -> LoadedModel:
        return self.models.load_model(product_id)

    # --- forecasts (ForecastService)

    def read_forecast(
        self,
        product_id: str,
        *,
        horizon: int | None = None,
        interval: float | None = None,
        if_none_match: Set[str] = frozenset(),
    ) -> ForecastRead:
        return self.forecasts.read_forecast(
            product_id, horizon=horizon, interval=interval, if_none_match=if_none_match
        )

    async def aread_forecast(
        self,
        product_id: str,
        *,
        horizon: int | None = None,
        interval: float | None = None,
        if_none_match: Set[str] = frozenset(),
    ) -> ForecastRead:
        return await self.forecasts.aread_forecast(
            product_id, horizon=horizon, interval=interval, if_none_match=if_none_match
        )

    def plan_forecast_batch(self, product_ids: Sequence[str] | None) -> list[str]:
        return self.forecasts.plan_batch(product_ids)

    def interval_width(self, interval: float | None) -> float:
        return self.forecasts.interval_width(interval)

    def predict_sales(
        self, product_id: str, horizon: int = 30, interval: float | None = None
    ) -> Forecast:
        return self.forecasts.predict_sales(product_id, horizon, interval)

    def forecast_version(
        self, product_id: str, version: int, horizon: int, interval: float | None = None
    ) -> Forecast:
        return self.forecasts.forecast_version(product_id, version, horizon, interval)

    def peek_forecast(
        self, product_id: str, version: int, horizon: int, interval: float | None = None
    ) -> Forecast | None:
        return self.forecasts.peek_forecast(product_id, version, horizon, interval)

    # --- charts (PlotService)

    def read_plot(
        self,
        product_id: str,
        *,
        horizon: int,
        interval: float | None = None,
        fmt: ChartFormat,
        if_none_match: Set[str] = frozenset(),
    ) -> PlotRead:
        return self.plots.read_plot(
            product_id, horizon=horizon, interval=interval, fmt=fmt, if_none_match=if_none_match
        )

    # --- warm-up (salescast.warmup.WarmupTarget)

    def list_warmup_products(self, limit: int) -> list[str]:
        return self.sales.list_warmup_products(limit)

    def warm_product(self, product_id: str) -> bool:
        return self.forecasts.warm_product(product_id)
