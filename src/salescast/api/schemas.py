"""Request and response models of the HTTP API (they become the OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorResponse(BaseModel):
    detail: str


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
    rows: int
    products: list[str]
    data_versions: dict[str, int]


class ProductModel(BaseModel):
    product_id: str
    sales_days: int
    first_date: dt.date | None
    last_date: dt.date | None
    active_version: int | None
    data_version: int


class SalesPointModel(BaseModel):
    date: dt.date
    quantity: float


class SalesHistoryResponse(BaseModel):
    product_id: str
    freq: Literal["D", "W", "M"]
    data_version: int
    points: list[SalesPointModel]


class ModelVersionModel(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

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


class TrainRequest(BaseModel):
    product_ids: list[str] | None = Field(
        default=None, description="products to train; all products when omitted"
    )


class TrainingSummaryModel(BaseModel):
    product_id: str
    version: int | None
    error: str | None
    metrics: dict[str, Any] | None


class JobModel(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    total: int
    done: int
    failed: int
    created_at: dt.datetime
    finished_at: dt.datetime | None
    error: str | None
    results: list[TrainingSummaryModel]


class ForecastPointModel(BaseModel):
    ds: dt.date
    yhat: float
    yhat_lower: float
    yhat_upper: float


class ForecastResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    product_id: str
    model_version: int
    horizon: int
    interval: float
    generated_at: dt.datetime
    points: list[ForecastPointModel]


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready", "unavailable"]
    store: Literal["ok", "error"]
    warmup: dict[str, Any]
