"""The service layer: what HTTP, CLI and warm-up jobs call to ingest, train and forecast."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from salescast.config import Settings
from salescast.forecasting import (
    Forecast,
    ModelRegistry,
    ModelVersionInfo,
    NoActiveModelError,
    TrainingParams,
    make_forecast,
)
from salescast.forecasting.batch import TrainingOutcome, TrainingTask, build_version, train_many
from salescast.forecasting.model_codec import decode_model
from salescast.store import Database, SalesStore
from salescast.store.ingest import ColumnSpec, ParsedSales, parse_csv, parse_json_rows
from salescast.store.sales import IngestMode, IngestResult

if TYPE_CHECKING:
    from prophet import Prophet

logger = logging.getLogger("salescast")


@dataclass(frozen=True)
class LoadedModel:
    product_id: str
    version: int
    model: Prophet


@dataclass(frozen=True)
class TrainingSummary:
    """One product's line in a batch training report."""

    product_id: str
    version: int | None
    error: str | None
    metrics: dict[str, Any] | None


ProgressCallback = Callable[[int, int, TrainingSummary], None]


class SalescastService:
    """Ingest, train, version and forecast, over one store.

    `load_model` and `predict_sales` are the expensive reads; they take plain
    arguments and return plain data (a model, a forecast dict) so a cache can
    wrap them without their callers changing.
    """

    def __init__(self, settings: Settings, *, database: Database | None = None) -> None:
        self.settings = settings
        self.database = database or Database(settings.database_url)
        self.store = SalesStore(self.database)
        self.registry = ModelRegistry(self.database)
        self.training_params = training_params_from(settings)

    def close(self) -> None:
        self.database.dispose()

    # --- sales

    def ingest_csv(
        self, data: bytes, *, columns: ColumnSpec, mode: IngestMode = "append"
    ) -> IngestResult:
        """Validate and store a CSV upload, all-or-nothing (IngestError lists the problems)."""
        return self._ingest(parse_csv(data, columns), mode)

    def ingest_rows(
        self, rows: object, *, columns: ColumnSpec, mode: IngestMode = "append"
    ) -> IngestResult:
        """Validate and store JSON rows (a list of objects), all-or-nothing."""
        return self._ingest(parse_json_rows(rows, columns), mode)

    def _ingest(self, parsed: ParsedSales, mode: IngestMode) -> IngestResult:
        result = self.store.ingest(parsed, mode=mode)
        logger.info("ingested %d rows for %d products", result.rows, len(result.products))
        return result

    # --- training and the registry

    def train_product(self, product_id: str) -> ModelVersionInfo:
        """Train, store a new version and make it active; raises InsufficientHistoryError."""
        version = build_version(self._training_task(product_id), self.training_params)
        return self.registry.create_version(product_id, version)

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
        ids = list(product_ids) if product_ids is not None else self.list_product_ids()
        for product_id in ids:
            self.store.get_product(product_id)  # unknown ids fail before any work starts
        summaries: list[TrainingSummary] = []

        def record(outcome: TrainingOutcome) -> None:
            summary = self._record_outcome(outcome)
            summaries.append(summary)
            if on_progress is not None:
                on_progress(len(summaries), len(ids), summary)

        tasks = (self._training_task(product_id) for product_id in ids)
        train_many(tasks, self.training_params, jobs=jobs, on_outcome=record)
        return summaries

    def _record_outcome(self, outcome: TrainingOutcome) -> TrainingSummary:
        if outcome.version is None:
            return TrainingSummary(outcome.product_id, None, outcome.error, None)
        info = self.registry.create_version(outcome.product_id, outcome.version)
        return TrainingSummary(outcome.product_id, info.version, None, info.metrics)

    def _training_task(self, product_id: str) -> TrainingTask:
        # The data version is read before the history: if an ingest lands in
        # between, the model is labelled with the older version, never newer.
        data_version = self.store.get_data_version(product_id)
        days, quantities = self.store.get_series(product_id)
        return TrainingTask(product_id, days, quantities, data_version)

    def list_models(self, product_id: str) -> list[ModelVersionInfo]:
        return self.registry.list_versions(product_id)

    def activate_model(self, product_id: str, version: int) -> ModelVersionInfo:
        return self.registry.activate(product_id, version)

    # --- reads

    def list_product_ids(self) -> list[str]:
        return [p.product_id for p in self.store.list_products()]

    def load_model(self, product_id: str) -> LoadedModel:
        """The active model of a product; raises ProductNotFoundError, NoActiveModelError."""
        version = self.registry.get_active_version(product_id)
        if version is None:
            raise NoActiveModelError(product_id)
        model = decode_model(self.registry.get_model_blob(product_id, version))
        return LoadedModel(product_id, version, model)

    def predict_sales(
        self, product_id: str, horizon: int = 30, interval: float | None = None
    ) -> Forecast:
        """Forecast `horizon` days after the active model's training window."""
        loaded = self.load_model(product_id)
        width = self.settings.interval_width if interval is None else interval
        return make_forecast(
            product_id, loaded.version, loaded.model, horizon=horizon, interval=width
        )

    # --- demo

    def load_demo_if_empty(self) -> IngestResult | None:
        """Load the bundled demo sales when the store holds no product; None if it did."""
        from salescast.demo import DEMO_COLUMNS, read_demo_csv

        if self.store.list_products():
            return None
        return self.ingest_csv(read_demo_csv(), columns=DEMO_COLUMNS)

    def list_untrained_product_ids(self) -> list[str]:
        return [p.product_id for p in self.store.list_products() if p.active_version is None]


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
