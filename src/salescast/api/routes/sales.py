"""Sales upload: CSV or JSON rows, validated and stored all-or-nothing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from salescast.api.auth import AdminOnly
from salescast.api.dependencies import AppSettings, Service
from salescast.api.errors import UploadTooLargeError
from salescast.api.schemas import (
    ADMIN_ERRORS,
    ErrorResponse,
    IngestErrorResponse,
    IngestResponse,
    UnprocessableResponse,
)
from salescast.store.frequency import parse_frequency
from salescast.store.ingest import ColumnSpec, IngestError, IngestProblem

router = APIRouter(tags=["sales"])

_CSV_TYPES = {"text/csv", "application/csv", "text/plain"}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                }
            },
        },
    }
}


@router.post(
    "/sales",
    response_model=IngestResponse,
    status_code=status.HTTP_201_CREATED,
    dependencies=AdminOnly,
    openapi_extra=_UPLOAD_BODY,
    responses={
        400: {"model": IngestErrorResponse, "description": "invalid rows; nothing was stored"},
        422: {
            "model": UnprocessableResponse,
            "description": "bad parameters, or dates that fit no frequency or not the "
            "product's; nothing was stored",
        },
        **ADMIN_ERRORS,
        413: {"model": ErrorResponse},
        415: {"model": ErrorResponse},
    },
)
async def upload_sales(
    request: Request,
    service: Service,
    settings: AppSettings,
    date_col: Annotated[str, Query(min_length=1, max_length=100)] = "date",
    product_cols: Annotated[
        str, Query(min_length=1, max_length=500, description="one column, or several joined by ','")
    ] = "product_id",
    quantity_col: Annotated[str, Query(min_length=1, max_length=100)] = "quantity",
    mode: Annotated[Literal["append", "replace"], Query()] = "append",
    freq: Annotated[
        str | None,
        Query(
            max_length=40,
            description="the products' frequency: D, W-MON ... W-SUN, MS or ME; rows are "
            "summed into its periods. Omitted: detected from a new product's dates",
        ),
    ] = None,
) -> IngestResponse:
    """Ingest sales (text/csv body or a JSON array of row objects); all rows or none."""
    columns = _column_spec(date_col, product_cols, quantity_col)
    declared = _frequency(freq)
    body = await _read_limited(request, settings.max_upload_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _CSV_TYPES:
        result = await run_in_threadpool(
            service.ingest_csv, body, columns=columns, mode=mode, freq=declared
        )
    elif content_type == "application/json":
        rows = _parse_json(body)
        result = await run_in_threadpool(
            service.ingest_rows, rows, columns=columns, mode=mode, freq=declared
        )
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send text/csv or application/json, not {content_type or 'no content type'!r}",
        )
    return IngestResponse(
        rows=result.rows, products=result.products, data_versions=result.data_versions
    )


def _column_spec(date_col: str, product_cols: str, quantity_col: str) -> ColumnSpec:
    try:
        product = tuple(c.strip() for c in product_cols.split(","))
        return ColumnSpec(date=date_col.strip(), product=product, quantity=quantity_col.strip())
    except ValueError as exc:
        # The same shape as every other 422, which is what the schema documents.
        error = {"type": "value_error", "loc": ("query", "product_cols"), "msg": str(exc)}
        raise RequestValidationError([{**error, "input": product_cols}]) from None


def _frequency(freq: str | None) -> str | None:
    if freq is None:
        return None
    try:
        return parse_frequency(freq)
    except ValueError as exc:
        error = {"type": "value_error", "loc": ("query", "freq"), "msg": str(exc)}
        raise RequestValidationError([{**error, "input": freq}]) from None


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a body without (or lying about) Content-Length
            raise UploadTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> object:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # An IngestError, so the 400 has the shape POST /sales documents, with the line.
        reason = f"the body is not valid JSON: {exc.msg} (character {exc.colno} of the line)"
        raise IngestError([IngestProblem(line=exc.lineno, column=None, reason=reason)]) from None
    if isinstance(document, dict) and "rows" in document:
        return document["rows"]
    return document
