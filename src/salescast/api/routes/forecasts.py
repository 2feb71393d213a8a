"""Forecasts from a product's active model (JSON, PNG, SVG, CSV), with ETag revalidation."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.routing import Match, Route
from starlette.types import Scope

from salescast.api.forecast_representations import VARY, answer_representation
from salescast.api.negotiation import (
    MEDIA_TYPES,
    REPRESENTATIONS,
    Representation,
    accepted_representation,
)
from salescast.api.schemas import (
    ErrorResponse,
    ForecastResponse,
    HorizonDays,
    IntervalWidth,
)
from salescast.cache import CacheSource
from salescast.forecasting.prediction import MAX_HORIZON_DAYS, Forecast
from salescast.service import SalescastService
from salescast.service.forecasts import DEFAULT_HORIZON

router = APIRouter(tags=["forecasts"])
T = TypeVar("T")
FORMAT_DESCRIPTION = "json, png, svg or csv; overrides the Accept header"
HORIZON_DESCRIPTION = (
    "periods ahead, in the product's frequency: days (at most 730), weeks (104) or months "
    "(24); without it 30, or a monthly product's 24"
)


# The query is parsed by hand (see `_query`), so its parameters are documented
# here, exactly as FastAPI documents `Query(...)` parameters (a test compares).
_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "horizon",
        "in": "query",
        "required": False,
        "schema": {
            "type": "integer",
            "maximum": MAX_HORIZON_DAYS,
            "minimum": 1,
            "description": HORIZON_DESCRIPTION,
            "default": DEFAULT_HORIZON,
            "title": "Horizon",
        },
        "description": HORIZON_DESCRIPTION,
    },
    {
        "name": "interval",
        "in": "query",
        "required": False,
        "schema": {
            "anyOf": [
                {"type": "number", "exclusiveMaximum": 1, "exclusiveMinimum": 0},
                {"type": "null"},
            ],
            "description": "width of the uncertainty interval",
            "title": "Interval",
        },
        "description": "width of the uncertainty interval",
    },
    {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {
            "anyOf": [{"type": "string", "enum": list(REPRESENTATIONS)}, {"type": "null"}],
            "description": FORMAT_DESCRIPTION,
            "title": "Format",
        },
        "description": FORMAT_DESCRIPTION,
    },
]
# The same constraints as POST /forecasts' body (api.schemas), so both routes agree.
_HORIZON: TypeAdapter[int] = TypeAdapter(HorizonDays)
_INTERVAL: TypeAdapter[float | None] = TypeAdapter(IntervalWidth)
_FORMAT: TypeAdapter[Representation | None] = TypeAdapter(Representation | None)


@router.get(
    "/products/{product_id}/forecast",
    response_model=ForecastResponse,
    responses={
        200: {
            "description": "the forecast; PNG or SVG: a chart of it over the history tail",
            "content": {MEDIA_TYPES[r]: {} for r in REPRESENTATIONS if r != "json"},
        },
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
        404: {"model": ErrorResponse},
        406: {"model": ErrorResponse, "description": "Accept names none of the formats"},
        409: {"model": ErrorResponse, "description": "the product has no trained model"},
        429: {"model": ErrorResponse, "description": "too many forecasts being computed"},
    },
    openapi_extra={"parameters": _PARAMETERS},
)
async def get_forecast(product_id: str, request: Request) -> Response:
    """Forecast, one point per period of the product (day, week, month) after the active
    model's training window; `X-Cache` tells the tier.

    JSON by default; `Accept: image/png`, `image/svg+xml` or `text/csv` (or
    `?format=png|svg|csv|json`) give a chart over the history tail or CSV.
    """
    return await _answer(request, product_id)


async def _serve(request: Request) -> Response:
    return await _answer(request, request.path_params["product_id"])


class ServedRoute(Route):
    """The forecast route as requests reach it: a plain Starlette route, first in the app.

    FastAPI's route above stays, for the OpenAPI document (and as the
    reference the tests compare with), but requests never reach it: FastAPI
    solves an endpoint's parameters again on every request (its dependency
    machinery, even for a path parameter and the request), about 30 us of a
    warm forecast's 100 us in process (bench/forecast_breakdown.py), more
    than the service's whole read. This route reads the path parameter
    itself; everything else (the query's validation and its error format,
    the error handlers, the middleware) is the app's, as for every route.
    It puts itself in the scope as FastAPI's routes do, so `/metrics` counts
    it under its template.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.FULL:
            child_scope["route"] = self
        return match, child_scope


SERVED_ROUTE = ServedRoute(
    "/products/{product_id}/forecast", _serve, methods=["GET"], include_in_schema=False
)


async def _answer(request: Request, product_id: str) -> Response:
    horizon, interval, representation = _query(request)
    if representation is None:
        representation = accepted_representation(request.scope["headers"])
        if representation is None:
            return _not_acceptable()
    # The service is read from app.state directly, not through the Service
    # dependency the other routes use: FastAPI resolves each dependency with
    # its own parameter analysis, a good part of this route's whole cost on a
    # cache hit.
    service: SalescastService = request.app.state.service
    if representation != "json":
        return await answer_representation(
            service,
            product_id,
            # no horizon: the product's default (30 periods, at most its frequency's limit)
            horizon=service.forecasts.default_horizon(product_id) if horizon is None else horizon,
            interval=interval,
            representation=representation,
            if_none_match=_if_none_match(request),
        )
    read = await service.aread_forecast(
        product_id, horizon=horizon, interval=interval, if_none_match=_if_none_match(request)
    )
    if read.forecast is None:
        return Response(
            status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": read.etag, **VARY}
        )
    return _forecast_body(read.forecast, read.etag, read.source)


def _forecast_body(forecast: Forecast, etag: str, source: CacheSource | None) -> Response:
    # The forecast is already plain JSON-ready data in the documented shape
    # (tests check it against the schema); re-validating it on every hit would
    # cost more than the cache lookup itself.
    return Response(
        _encoded(forecast),
        media_type="application/json",
        headers={"ETag": etag, "X-Cache": str(source or CacheSource.MISS), "Vary": "Accept"},
    )


def _not_acceptable() -> Response:
    offered = ", ".join(MEDIA_TYPES[r] for r in REPRESENTATIONS)
    detail = f"the Accept header names none of the forecast's formats: {offered} (or ?format=)"
    return Response(
        orjson.dumps({"detail": detail}),
        status_code=status.HTTP_406_NOT_ACCEPTABLE,
        media_type="application/json",
        headers=VARY,
    )


def _encoded(forecast: Forecast) -> bytes:
    """The JSON of a forecast, encoded once per object the cache hands out.

    An L1 hit returns the very object stored before (decision 0004), and a
    cached value is never mutated, so its bytes are the same on every hit:
    they are kept next to the object (held here, so its id cannot be reused).
    """
    known = _bodies.get(id(forecast))
    if known is not None and known[0] is forecast:
        return known[1]
    body = orjson.dumps(forecast)
    if len(_bodies) >= _BODIES_LIMIT:
        _bodies.clear()
    _bodies[id(forecast)] = (forecast, body)
    return body


# id(forecast) -> (forecast, its JSON); emptied when full.
_bodies: dict[int, tuple[Forecast, bytes]] = {}
_BODIES_LIMIT = 1024


def _if_none_match(request: Request) -> set[str]:
    # Read from the raw headers: building Starlette's Headers costs more than this.
    for name, value in request.scope["headers"]:
        if name == b"if-none-match":
            header = value.decode("latin-1")
            return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
    return set()


def _query(request: Request) -> tuple[int | None, float | None, Representation | None]:
    """``horizon``, ``interval`` and ``format`` from the query string, or
    RequestValidationError.

    Declared as ``Query(...)`` parameters, FastAPI analyses both annotations
    again on every request, which cost more than the rest of a warm forecast
    (about 70 us of 200). The same pydantic constraints validate them here,
    with FastAPI's error format; tests/api/test_forecast_parameters.py checks
    the answers against a route declaring them the usual way.
    """
    raw = request.scope["query_string"]
    known = _parsed_queries.get(raw)
    if known is not None:
        return known
    params = request.query_params
    errors: list[dict[str, Any]] = []
    # No horizon: None, which the service makes the product's default (DEFAULT_HORIZON,
    # capped at its frequency's limit); the schema documents 30, as for most products.
    raw_horizon = params.get("horizon")
    horizon = (
        None
        if raw_horizon is None
        else _parsed(raw_horizon, "horizon", _HORIZON, DEFAULT_HORIZON, errors)
    )
    interval = _parsed(params.get("interval"), "interval", _INTERVAL, None, errors)
    representation = _parsed(params.get("format"), "format", _FORMAT, None, errors)
    if errors:
        raise RequestValidationError(errors)
    if len(_parsed_queries) >= _PARSED_QUERIES_LIMIT:
        _parsed_queries.clear()
    _parsed_queries[raw] = (horizon, interval, representation)
    return horizon, interval, representation


# Valid query strings already parsed, as sent: clients repeat the same few
# (horizon=30, ...), and parsing one costs a warm forecast about 10 us.
# Only valid ones are kept; emptied when full.
_parsed_queries: dict[bytes, tuple[int | None, float | None, Representation | None]] = {}
_PARSED_QUERIES_LIMIT = 1024


def _parsed(
    raw: str | None, name: str, adapter: TypeAdapter[T], default: T, errors: list[dict[str, Any]]
) -> T:
    if raw is None:
        return default
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        errors += [{**error, "loc": ("query", name)} for error in exc.errors(include_url=False)]
        return default
