"""Request and response models of the HTTP API (they become the OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from salescast.api.schema_examples import (
    CACHE_STATS_EXAMPLE,
    CACHE_STATUS_EXAMPLE,
    ERROR_EXAMPLE,
    FORECAST_EXAMPLE,
    INGEST_EXAMPLE,
    MODEL_VERSION_EXAMPLE,
    PRODUCT_EXAMPLE,
    SALES_HISTORY_EXAMPLE,
    TRAINING_SUMMARY_EXAMPLE,
)
from salescast.forecasting.prediction import MAX_HORIZON_DAYS
from salescast.service.forecast_batches import MAX_BATCH_PRODUCTS
from salescast.service.forecasts import DEFAULT_HORIZON


def _example(example: dict[str, Any]) -> ConfigDict:
    """A model's OpenAPI example (one real answer; see schema_examples)."""
    return ConfigDict(json_schema_extra={"examples": [example]})


HorizonDays = Annotated[int, Field(ge=1, le=MAX_HORIZON_DAYS, description="days ahead")]
"""A forecast horizon as every forecast route validates it (1 to MAX_HORIZON_DAYS)."""

IntervalWidth = Annotated[
    float | None, Field(gt=0, lt=1, description="width of the uncertainty interval")
]
"""An interval width as every forecast route validates it; None: SALESCAST_INTERVAL_WIDTH."""


class ErrorResponse(BaseModel):
    model_config = _example(ERROR_EXAMPLE)

    detail: str


class UnprocessableResponse(BaseModel):
    """A 422 of a route that has parameters: their errors (FastAPI's list of `loc`, `msg`,
    `type`), or one reason about the request as a whole."""

    detail: str | list[dict[str, Any]]


ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "no bearer token"},
    403: {"model": ErrorResponse, "description": "wrong token, or none configured"},
}
"""The answers every admin-only endpoint can give, for its `responses=`."""


class IngestProblemModel(BaseModel):
    line: int | None = Field(description="1-based line (CSV, header is line 1) or row (JSON)")
    unit: Literal["line", "row"] = Field(description="what `line` counts")
    column: str | None
    reason: str


class IngestErrorDetail(BaseModel):
    message: str
    total: int = Field(description="number of problems found; `problems` lists the first ones")
    problems: list[IngestProblemModel]


class IngestErrorResponse(BaseModel):
    detail: IngestErrorDetail


class IngestResponse(BaseModel):
    model_config = _example(INGEST_EXAMPLE)

    rows: int
    products: list[str]
    data_versions: dict[str, int]


class ProductModel(BaseModel):
    model_config = _example(PRODUCT_EXAMPLE)

    product_id: str
    frequency: str = Field(
        description="D (daily), W-MON ... W-SUN (weekly, dated that weekday), MS or ME "
        "(monthly, dated the 1st or the last day); forecasts and backtests count in it"
    )
    sales_days: int = Field(description="dates with sales stored (days, weeks or months)")
    first_date: dt.date | None
    last_date: dt.date | None
    active_version: int | None
    data_version: int
    mase: float | None = Field(
        default=None, description="the active version's backtest MASE; null without a model"
    )
    mase_seasonal_naive: float | None = Field(
        default=None,
        description="seasonal-naive's MASE on the same holdout; null without a model",
    )


class SalesPointModel(BaseModel):
    date: dt.date
    quantity: float


class SalesHistoryResponse(BaseModel):
    model_config = _example(SALES_HISTORY_EXAMPLE)

    product_id: str
    freq: Literal["D", "W", "M"]
    data_version: int
    points: list[SalesPointModel]


class ModelVersionModel(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), **_example(MODEL_VERSION_EXAMPLE))

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
    pinned: bool = Field(
        description="active and activated by hand: trainings store new versions without "
        "activating them until it is unpinned or another version is activated"
    )
    not_activated_reason: str | None = Field(
        description="why the training that stored this version left another one active "
        "(pinned, or a backtest worse by more than SALESCAST_ACTIVATION_MARGIN); "
        "null when training activated it"
    )
    batch_id: str | None = Field(
        default=None,
        description="the bulk training (job id, or the CLI's batch) that stored it, at most "
        "one version per product per batch; null for a version trained on its own",
    )


class TrainRequest(BaseModel):
    product_ids: list[str] | None = Field(
        default=None, description="products to train; all products when omitted"
    )
    force: bool = Field(
        default=False,
        description="train every listed product, also those whose data and training settings "
        "have not changed since their newest version (skipped otherwise)",
    )


class TrainingSummaryModel(BaseModel):
    model_config = _example(TRAINING_SUMMARY_EXAMPLE)

    product_id: str
    version: int | None = Field(
        description="the new model version; null when skipped or when training failed"
    )
    error: str | None
    metrics: dict[str, Any] | None
    outcome: Literal["activated", "not_activated", "skipped", "failed"] = Field(
        default="activated",
        description="activated: the new version is active; not_activated: stored, another "
        "stays active; skipped: not trained, nothing changed; failed: see `error`",
    )
    reason: str | None = Field(
        default=None, description="why not activated, or why skipped; null otherwise"
    )
    note: str | None = Field(
        default=None,
        description="what happened on the way, e.g. rescheduled after its Dask worker died",
    )


class JobOwnerModel(BaseModel):
    host: str = Field(description="host name of the server process running the job")
    pid: int


_JOB_EXAMPLE: dict[str, Any] = {
    "id": "4f0c9a6e2b7d4e51a3c8d9f1b2e3a4c5",
    "kind": "train",
    "status": "running",
    "total": 4,
    "done": 3,
    "failed": 1,
    "skipped": 1,
    "created_at": "2024-06-03T09:15:02.417000Z",
    "started_at": "2024-06-03T09:15:02.431000Z",
    "finished_at": None,
    "error": None,
    "results": [
        {
            "product_id": "CA_1-FOODS_3",
            "version": 4,
            "error": None,
            "outcome": "activated",
            "reason": None,
            "metrics": {
                "holdout_start": "2016-04-25",
                "holdout_end": "2016-05-22",
                "holdout_days": 28,
                "mae": 212.4,
                "mae_seasonal_naive": 301.9,
                "mase": 0.71,
                "mase_seasonal_naive": 1.01,
                "sales_days": 1941,
            },
        },
        {
            "product_id": "tiny",
            "version": None,
            "error": "product 'tiny' has 12 day(s) of sales; training needs at least 60",
            "metrics": None,
            "outcome": "failed",
            "reason": None,
        },
        {
            "product_id": "TX_2-HOUSEHOLD_1",
            "version": None,
            "error": None,
            "metrics": None,
            "outcome": "skipped",
            "reason": "data unchanged since version 3 was trained (data version 7, same "
            "training settings); force retrains it",
        },
    ],
    "owner": {"host": "api-2", "pid": 4711},
    "heartbeat_at": "2024-06-03T09:16:40.002000Z",
}


class JobModel(BaseModel):
    """A background job as stored: any worker or instance answers with the same record."""

    model_config = ConfigDict(json_schema_extra={"examples": [_JOB_EXAMPLE]})

    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "partial", "failed", "cancelled"] = Field(
        description="succeeded: no product failed; partial: some failed (see `results`); "
        "failed: every product failed, or the job could not run (see `error`)"
    )
    total: int = Field(description="products in the job")
    done: int = Field(description="products finished, trained or failed")
    failed: int = Field(description="products that could not be trained (see `results`)")
    skipped: int = Field(
        default=0, description="products not trained since nothing changed (see `results`)"
    )
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None
    error: str | None = Field(
        description="why the job as a whole failed or was cancelled; a job whose worker "
        "stopped says 'the worker running this job stopped (no heartbeat since ...)'"
    )
    results: list[TrainingSummaryModel] = Field(description="one per finished product")
    owner: JobOwnerModel | None = Field(default=None, description="the process running it")
    heartbeat_at: dt.datetime | None = Field(
        default=None, description="last sign of life of its process while unfinished"
    )


class ForecastPointModel(BaseModel):
    ds: dt.date
    yhat: float
    yhat_lower: float
    yhat_upper: float


class ForecastResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), **_example(FORECAST_EXAMPLE))

    product_id: str
    model_version: int
    frequency: str = Field(
        default="D", description="the product's frequency: one point per day, week or month"
    )
    horizon: int = Field(description="points ahead, in the product's periods")
    interval: float
    generated_at: dt.datetime = Field(
        description=(
            "when the model version was trained (stored), UTC, to the second: fixed by the "
            "version, so the same version and arguments give the same body byte for byte "
            "(not the time this forecast was computed)"
        )
    )
    points: list[ForecastPointModel]


_FORECASTS_REQUEST_EXAMPLE: dict[str, Any] = {
    "product_ids": ["CA_1-FOODS_3", "TX_2-HOUSEHOLD_1"],
    "horizon": 2,
    "interval": 0.9,
}


class ForecastsRequest(BaseModel):
    """The body of POST /forecasts; every field may be left out (an empty body: all products)."""

    # strict: a JSON body has types, so "30" or true is a mistake to report, not to coerce
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [_FORECASTS_REQUEST_EXAMPLE]}
    )

    product_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BATCH_PRODUCTS,
        description="products to forecast, answered in this order, each once; null or left "
        "out: every product with an active model (those without are skipped). Every listed "
        "product must exist (else 404) and have an active model (else 409).",
    )
    horizon: HorizonDays | None = Field(
        default=None,
        description="periods ahead, in each product's own periods; null or left out: each "
        f"product's default ({DEFAULT_HORIZON}, at most its frequency's limit: a monthly "
        "product's 24), as GET /products/{id}/forecast without a horizon",
    )
    interval: IntervalWidth = None


class BatchErrorModel(BaseModel):
    product_id: str
    status: int = Field(description="what GET /products/{id}/forecast would have answered")
    detail: str


def _example_forecast(product_id: str, version: int, points: list[tuple[Any, ...]]) -> Any:
    return {
        "product_id": product_id,
        "model_version": version,
        "horizon": 2,
        "interval": 0.9,
        "generated_at": "2024-06-03T09:15:02.417000+00:00",
        "points": [
            {"ds": ds, "yhat": y, "yhat_lower": lo, "yhat_upper": hi} for ds, y, lo, hi in points
        ],
    }


_FORECASTS_EXAMPLE: dict[str, Any] = {
    "horizon": 2,
    "interval": 0.9,
    "forecasts": [
        _example_forecast(
            "CA_1-FOODS_3",
            3,
            [("2016-04-25", 2710.4, 2301.7, 3122.9), ("2016-04-26", 2598.1, 2190.2, 3010.6)],
        ),
        _example_forecast(
            "TX_2-HOUSEHOLD_1",
            1,
            [("2016-04-25", 611.9, 480.3, 742.0), ("2016-04-26", 588.2, 455.8, 719.5)],
        ),
    ],
    "errors": [],
}
FORECASTS_CSV_EXAMPLE = """product_id,ds,yhat,yhat_lower,yhat_upper,model_version
CA_1-FOODS_3,2016-04-25,2710.4,2301.7,3122.9,3
CA_1-FOODS_3,2016-04-26,2598.1,2190.2,3010.6,3
TX_2-HOUSEHOLD_1,2016-04-25,611.9,480.3,742.0,1
TX_2-HOUSEHOLD_1,2016-04-26,588.2,455.8,719.5,1
"""


class ForecastsResponse(BaseModel):
    """The JSON answer of POST /forecasts, streamed: the fields come in this order."""

    model_config = ConfigDict(json_schema_extra={"examples": [_FORECASTS_EXAMPLE]})

    horizon: int = Field(
        description=f"the horizon asked ({DEFAULT_HORIZON} when not sent); each forecast "
        "states its own, which for a product whose limit is lower is that limit"
    )
    interval: float = Field(description="the interval width used (the setting when not sent)")
    forecasts: list[ForecastResponse] = Field(
        description="one per product, each exactly the body of GET /products/{id}/forecast"
    )
    errors: list[BatchErrorModel] = Field(
        description="products that failed after the answer began (busy, store or model "
        "unreadable); the others are answered. Unknown or untrained listed products are "
        "refused before, with 404 or 409."
    )


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready", "unavailable"]
    store: Literal["ok", "error"]
    warmup: dict[str, Any]


class LatencyModel(BaseModel):
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


class TierStatsModel(BaseModel):
    hits: int
    misses: int
    sets: int
    errors: int
    skipped: int = Field(description="operations not attempted because the breaker was open")
    evictions: int
    bytes_read: int
    bytes_written: int
    latency: LatencyModel


class NamespaceStatsModel(BaseModel):
    namespace: str
    l1: TierStatsModel
    l2: TierStatsModel
    hits: int
    misses: int = Field(description="lookups no tier could answer")
    computations: int = Field(description="times the expensive function really ran")
    hit_rate: float
    errors: int


class WorkerModel(BaseModel):
    pid: int
    cache_instance: str


class CacheStatsResponse(BaseModel):
    model_config = _example(CACHE_STATS_EXAMPLE)

    worker: WorkerModel = Field(description="statistics are per worker process: this one")
    namespaces: dict[str, NamespaceStatsModel]
    l1: dict[str, int] | None
    breaker: dict[str, Any] | None
    subscription: str | None
    compute: dict[str, int]


class CacheStatusResponse(BaseModel):
    model_config = _example(CACHE_STATUS_EXAMPLE)

    worker: WorkerModel
    backend: Literal["memory", "redis"]
    redis_url: str | None = Field(description="host:port/db, never credentials")
    redis_reachable: bool | None
    redis_version: str | None
    latency_ms: float | None
    breaker_state: str | None
    subscription: str | None
    l1_entries: int
    l1_bytes: int
    redis_topology: Literal["single", "sentinel", "cluster"] | None = Field(
        default=None, description="how the shared tier is deployed"
    )
    redis_writable: bool | None = Field(
        default=None,
        description="false when the server taking writes answers as a replica (writes fail)",
    )
    redis_nodes: list[dict[str, Any]] | None = Field(
        default=None, description="each Redis server: address, role, whether it answered"
    )
    breaker_last_error: str | None = Field(
        default=None, description="what the latest Redis failure said"
    )
    warmup: dict[str, Any]


class WarmupResponse(BaseModel):
    started: bool = Field(description="false when a warm-up was already running")
    warmup: dict[str, Any]


class CacheClearResponse(BaseModel):
    removed: int = Field(description="entries removed from Redis and this worker's L1")
    namespace: str | None
    product_id: str | None


class ProductInvalidatedResponse(BaseModel):
    product_id: str
    generation: int
