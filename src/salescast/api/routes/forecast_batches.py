"""Many products' forecasts in one request, streamed as JSON or CSV (POST /forecasts).

Each product is read through the service's forecast read, the one behind
GET /products/{id}/forecast (same cache, same compute gate, same bodies),
one product at a time, and written out before the next is read.
Everything that can refuse the request as a whole (the body, the format, the
listed products) is checked before the first byte, since a streamed 200
cannot become a 404 half-way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.types import Send

from salescast.api.dependencies import Service
from salescast.api.schemas import (
    FORECASTS_CSV_EXAMPLE,
    ErrorResponse,
    ForecastsRequest,
    ForecastsResponse,
)
from salescast.service import SalescastService
from salescast.service.batch_output import BatchFormat, BatchWriter, batch_writer
from salescast.service.forecast_batches import PER_PRODUCT_ERRORS, BatchError, batch_error

router = APIRouter(tags=["forecasts"])
logger = logging.getLogger("salescast.api")

# Media ranges of an Accept header and the format each asks for.
_ACCEPTED: dict[str, BatchFormat] = {
    "application/json": "json",
    "application/*": "json",
    "*/*": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/*": "csv",
}


async def _require_json_body(request: Request) -> None:
    """415 for a body sent as something else than JSON (`curl -d` says form data).

    Without it FastAPI hands the text to the model and answers a puzzling
    "Input should be a valid dictionary"; a dependency runs before the body
    is validated.
    """
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if has_body and media != "application/json" and not media.endswith("+json"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"POST /forecasts takes a JSON body (Content-Type: application/json), "
            f"not {media or 'no content type'!r}",
        )


@router.post(
    "/forecasts",
    response_model=ForecastsResponse,
    dependencies=[Depends(_require_json_body)],
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": FORECASTS_CSV_EXAMPLE}
            },
            "description": "JSON, or CSV in the long shape with `Accept: text/csv` or "
            "`?format=csv`; streamed, one product at a time",
        },
        404: {"model": ErrorResponse, "description": "listed products that do not exist"},
        406: {"model": ErrorResponse, "description": "Accept names neither JSON nor CSV"},
        409: {"model": ErrorResponse, "description": "listed products without a trained model"},
        415: {"model": ErrorResponse, "description": "a body that is not JSON"},
    },
)
async def forecast_many(
    request: Request,
    service: Service,
    body: Annotated[ForecastsRequest | None, Body()] = None,
    fmt: Annotated[
        Literal["json", "csv"] | None,
        Query(alias="format", description="json or csv; wins over the Accept header"),
    ] = None,
) -> StreamingResponse:
    """Forecasts of the listed products (all with a model when none are listed), streamed."""
    wanted = body or ForecastsRequest()
    chosen = fmt or negotiate_format(request.headers.get("accept"))
    # One query over every product; on a thread, as a store read may wait on the network.
    ids = await anyio.to_thread.run_sync(service.plan_forecast_batch, wanted.product_ids)
    writer = batch_writer(
        chosen, horizon=wanted.horizon, interval=service.interval_width(wanted.interval)
    )
    stream = _stream(service, ids, writer, horizon=wanted.horizon, interval=wanted.interval)
    return _CuttableStreamingResponse(stream, media_type=writer.media_type)


def negotiate_format(accept: str | None) -> BatchFormat:
    """The format an Accept header prefers (highest q; JSON when absent); 406 for neither."""
    best: tuple[float, BatchFormat] | None = None
    for media_range in (accept or "*/*").split(","):
        media, *params = (part.strip() for part in media_range.split(";"))
        fmt = _ACCEPTED.get(media.lower())
        quality = _quality(params)
        if fmt is not None and quality > 0 and (best is None or quality > best[0]):
            best = (quality, fmt)
    if best is None:
        raise HTTPException(
            status.HTTP_406_NOT_ACCEPTABLE,
            f"POST /forecasts answers application/json or text/csv, not {accept!r} "
            "(Accept header; or send ?format=json|csv)",
        )
    return best[1]


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0  # a malformed weight does not count as acceptable
    return 1.0


async def _stream(
    service: SalescastService,
    ids: list[str],
    writer: BatchWriter,
    *,
    horizon: int | None,
    interval: float | None,
) -> AsyncIterator[str]:
    errors: list[BatchError] = []
    yield writer.start()
    for product_id in ids:
        try:
            read = await service.aread_forecast(product_id, horizon=horizon, interval=interval)
        except PER_PRODUCT_ERRORS as exc:
            logger.warning("POST /forecasts: %s failed: %s", product_id, exc)
            error = batch_error(product_id, exc)
            if not writer.reports_errors:
                raise _StreamCutError(error) from exc
            errors.append(error)
            continue
        assert read.forecast is not None  # "not modified" needs an ETag, and none was given
        yield writer.forecast(read.forecast)
    yield writer.end(errors)


class _StreamCutError(Exception):
    """A product failed in a stream whose format cannot say so (CSV): end it unfinished."""

    def __init__(self, error: BatchError) -> None:
        super().__init__(f"{error.product_id}: {error.detail} ({error.status})")


class _CuttableStreamingResponse(StreamingResponse):
    """A stream that a `_StreamCutError` ends without its last chunk.

    Returning before the final (empty, `more_body: False`) message makes the
    server close the connection mid-transfer, which every HTTP client reports
    as an incomplete answer (curl: "transfer closed with outstanding read
    data"), so a CSV cut short cannot pass for a complete one.
    """

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        except _StreamCutError as exc:
            logger.warning("POST /forecasts: CSV answer cut short: %s", exc)
