"""The service layer: what HTTP, CLI and warm-up jobs call to ingest, train and forecast."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from salescast.cache import (
    MISSING,
    CachedFunction,
    TieredCache,
    cached,
    cached_model,
    cached_prediction,
    product_tag,
)
from salescast.cache_factory import build_cache
from salescast.compute_gate import ComputeGate
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
from salescast.forecasting.model_cache_codec import register_prophet_codec
from salescast.forecasting.model_codec import decode_model
from salescast.store import Database, ProductNotFoundError, SalesStore
from salescast.store.ingest import ColumnSpec, ParsedSales, parse_csv, parse_json_rows
from salescast.store.sales import Frequency, IngestMode, IngestResult

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


@dataclass(frozen=True)
class History:
    """A product's sales history as served (and cached): points are `{"date", "quantity"}`."""

    product_id: str
    data_version: int
    points: list[dict[str, Any]]


ProgressCallback = Callable[[int, int, TrainingSummary], None]


class SalescastService:
    """Ingest, train, version and forecast, over one store, through one two-tier cache.

    The expensive reads (history queries, model loading, prediction) are
    cached in three namespaces, `data`, `model` and `prediction`. Their keys
    carry the durable version they depend on, read from the store first: the
    product's data version for history, the active model version for models
    and forecasts. A retrain, an activation or an ingest changes that version
    in the store, so the next read builds a new key and can never meet an
    entry of the superseded version, in any worker, whatever Redis or pub/sub
    do. The version is read *before* the value is computed, so an entry is
    never labelled with a version newer than its content. Every change also
    invalidates the product's tag, which reclaims the old entries in every
    worker's L1 (pub/sub) and in Redis.

    A new active version is written through to the `model` namespace (see
    `_write_through_model`), so the first forecast after a retrain or a
    rollback computes its prediction from a cached model instead of decoding
    the model from the store in the request.
    """

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
        self._model_at: CachedFunction[[str, int], Prophet] = cached_model(
            ttl=settings.cache_ttl_model_seconds, cache=self.cache, tags=_product_tags
        )(self._decode_model)
        self._forecast_at: CachedFunction[[str, int, int, float], Forecast] = cached_prediction(
            ttl=settings.cache_ttl_prediction_seconds, cache=self.cache, tags=_product_tags
        )(self._compute_forecast)
        self._history_at = cached(
            namespace="data",
            ttl=settings.cache_ttl_data_seconds,
            cache=self.cache,
            tags=_product_tags,
        )(self._query_history)

    def close(self) -> None:
        self.cache.close()
        self.database.dispose()

    def invalidate_products(self, product_ids: Iterable[str]) -> None:
        """Drop every cached entry of these products, in every worker (pub/sub) and in Redis."""
        for product_id in product_ids:
            self.cache.invalidate_tag(product_tag(product_id))

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
        self.invalidate_products(result.products)
        logger.info("ingested %d rows for %d products", result.rows, len(result.products))
        return result

    def get_history(
        self,
        product_id: str,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        freq: Frequency = "D",
    ) -> History:
        """Sales history (cached in namespace `data`, keyed by the product's data version)."""
        data_version = self.store.get_data_version(product_id)
        points = self._history_at(product_id, data_version, start, end, freq)
        return History(product_id, data_version, points)

    def _query_history(
        self,
        product_id: str,
        data_version: int,
        start: dt.date | None,
        end: dt.date | None,
        freq: Frequency,
    ) -> list[dict[str, Any]]:
        del data_version  # part of the cache key only: the store always answers with its latest
        points = self.store.get_history(product_id, start=start, end=end, freq=freq)
        return [{"date": p.date.isoformat(), "quantity": p.quantity} for p in points]

    # --- training and the registry

    def train_product(self, product_id: str) -> ModelVersionInfo:
        """Train, store a new version and make it active; raises InsufficientHistoryError."""
        version = build_version(self._training_task(product_id), self.training_params)
        info = self.registry.create_version(product_id, version)
        self.invalidate_products([product_id])
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
        ids = self.resolve_products(product_ids)  # unknown ids fail before any work starts
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
        self.invalidate_products([outcome.product_id])
        self._write_through_model(outcome.product_id, info.version, outcome.version.model_blob)
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
        """Promote or roll back; the product's cached entries go at once, everywhere."""
        info = self.registry.activate(product_id, version)
        self.invalidate_products([product_id])
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
        once). The value is what a miss would compute (`_decode_model`, from
        `blob` when the caller holds it, else from the registry), so a later
        rollback or retrain can only make it unreachable, never wrong.

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
            register_prophet_codec()  # without it the model cannot be encoded: nothing is stored
            model = (
                decode_model(blob) if blob is not None else self._decode_model(product_id, version)
            )
            self._model_at.prime(model, product_id, version)
        except Exception:
            logger.warning(
                "model %s v%d: writing it through to the cache failed; the next forecast "
                "loads it from the store",
                product_id,
                version,
                exc_info=True,
            )

    # --- reads

    def list_product_ids(self) -> list[str]:
        return self.store.list_product_ids()

    def resolve_products(self, product_ids: Sequence[str] | None) -> list[str]:
        """The listed ids (every product when None), checked with one query;
        raises ProductNotFoundError for the first id the store does not know."""
        known = self.store.list_product_ids()
        if product_ids is None:
            return known
        known_set = set(known)
        for product_id in product_ids:
            if product_id not in known_set:
                raise ProductNotFoundError(product_id)
        return list(product_ids)

    def get_active_version(self, product_id: str) -> int:
        """The active model version; raises ProductNotFoundError, NoActiveModelError."""
        version = self.registry.get_active_version(product_id)
        if version is None:
            raise NoActiveModelError(product_id)
        return version

    async def aget_active_version(self, product_id: str) -> int:
        """As `get_active_version`, awaited on the event loop (batched on PostgreSQL)."""
        version = await self.registry.aget_active_version(product_id)
        if version is None:
            raise NoActiveModelError(product_id)
        return version

    def load_model(self, product_id: str) -> LoadedModel:
        """The active model of a product (cached in namespace `model`)."""
        version = self.get_active_version(product_id)
        return LoadedModel(product_id, version, self._cached_model(product_id, version))

    def predict_sales(
        self, product_id: str, horizon: int = 30, interval: float | None = None
    ) -> Forecast:
        """Forecast `horizon` days after the active model's training window (cached)."""
        return self.forecast_version(
            product_id, self.get_active_version(product_id), horizon, interval
        )

    def forecast_version(
        self, product_id: str, version: int, horizon: int, interval: float | None = None
    ) -> Forecast:
        """Forecast from one given model version (cached in namespace `prediction`).

        On a miss the computation takes a slot of the compute gate and may
        raise ComputeBusyError; hits never wait.
        """
        width = self.settings.interval_width if interval is None else interval
        return self._forecast_at(product_id, version, horizon, width)

    def peek_forecast(
        self, product_id: str, version: int, horizon: int, interval: float | None = None
    ) -> Forecast | None:
        """The forecast `forecast_version` would return if this worker's L1 holds it, else
        None; no I/O and no computation, so an event loop may call it."""
        width = self.settings.interval_width if interval is None else interval
        found = self._forecast_at.peek(product_id, version, horizon, width)
        return None if found is MISSING else cast(Forecast, found)

    def _cached_model(self, product_id: str, version: int) -> Prophet:
        # The Prophet codec is registered on first use, not when the service is
        # built: importing Prophet costs every CLI command and server start ~1 s.
        register_prophet_codec()
        return self._model_at(product_id, version)

    def _decode_model(self, product_id: str, version: int) -> Prophet:
        return decode_model(self.registry.get_model_blob(product_id, version))

    def _compute_forecast(
        self, product_id: str, version: int, horizon: int, interval: float
    ) -> Forecast:
        with self.gate.slot():
            model = self._cached_model(product_id, version)
            return make_forecast(product_id, version, model, horizon=horizon, interval=interval)

    # --- warm-up (salescast.warmup.WarmupTarget)

    def list_warmup_products(self, limit: int) -> list[str]:
        """The busiest products (by the last 28 days of sales) that have an active model."""
        trained = {p.product_id for p in self.store.list_products() if p.active_version}
        busiest = self.store.list_busiest_products(limit=max(limit * 2, limit))
        return [p for p in busiest if p in trained][:limit]

    def warm_product(self, product_id: str) -> bool:
        """Load the model and the default forecast into the cache; False if untrained."""
        version = self.registry.get_active_version(product_id)
        if version is None:
            return False
        self.forecast_version(product_id, version, self.settings.default_horizon_days)
        return True

    # --- demo

    def load_demo_if_empty(self) -> IngestResult | None:
        """Load the bundled demo sales when the store holds no product; None if it did."""
        from salescast.demo import DEMO_COLUMNS, read_demo_csv

        if self.store.list_products():
            return None
        return self.ingest_csv(read_demo_csv(), columns=DEMO_COLUMNS)

    def list_untrained_product_ids(self) -> list[str]:
        return [p.product_id for p in self.store.list_products() if p.active_version is None]


def _product_tags(product_id: str, *_args: object, **_kwargs: object) -> list[str]:
    return [product_tag(product_id)]


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
