"""Forecasts from a product's active model, with ETag revalidation."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response, status

from salescast.api.dependencies import AppSettings, Service
from salescast.api.schemas import ErrorResponse, ForecastResponse
from salescast.cache import last_cache_source
from salescast.forecasting.prediction import MAX_HORIZON_DAYS

router = APIRouter(tags=["forecasts"])


def forecast_etag(product_id: str, version: int, horizon: int, interval: float) -> str:
    """Names the forecast by what determines it: a new active version changes the tag."""
    return f'"{product_id}.v{version}.h{horizon}.i{interval:g}"'


@router.get(
    "/products/{product_id}/forecast",
    response_model=ForecastResponse,
    responses={
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse, "description": "the product has no trained model"},
        429: {"model": ErrorResponse, "description": "too many forecasts being computed"},
    },
)
def get_forecast(
    product_id: str,
    request: Request,
    service: Service,
    settings: AppSettings,
    horizon: Annotated[int, Query(ge=1, le=MAX_HORIZON_DAYS, description="days ahead")] = 30,
    interval: Annotated[
        float | None, Query(gt=0, lt=1, description="width of the uncertainty interval")
    ] = None,
) -> Response:
    """Daily forecast after the active model's training window; `X-Cache` tells the tier."""
    width = settings.interval_width if interval is None else interval
    # The version is read once: the ETag, the cache key and the body all name it.
    version = service.get_active_version(product_id)
    etag = forecast_etag(product_id, version, horizon, width)
    if etag in _if_none_match(request):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    forecast = service.forecast_version(product_id, version, horizon, width)
    # The forecast is already plain JSON-ready data in the documented shape
    # (tests check it against the schema); re-validating it on every hit would
    # cost more than the cache lookup itself.
    return Response(
        orjson.dumps(forecast),
        media_type="application/json",
        headers={"ETag": etag, "X-Cache": str(last_cache_source.get() or "MISS")},
    )


def _if_none_match(request: Request) -> set[str]:
    header = request.headers.get("if-none-match", "")
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
