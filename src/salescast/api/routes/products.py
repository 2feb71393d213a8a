"""Product listing and sales history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError

from salescast.api.dependencies import Service
from salescast.api.schemas import (
    ErrorResponse,
    ProductModel,
    SalesHistoryResponse,
)

router = APIRouter(tags=["products"])


@router.get("/products", response_model=list[ProductModel])
def list_products(service: Service) -> list[ProductModel]:
    """Products with their number of sales days, first/last date and active model version."""
    return [ProductModel(**vars(p)) for p in service.store.list_products()]


@router.get(
    "/products/{product_id}/sales",
    response_model=SalesHistoryResponse,
    responses={404: {"model": ErrorResponse}},
)
def get_sales(
    product_id: str,
    service: Service,
    start: Annotated[dt.date | None, Query(description="first day, inclusive")] = None,
    end: Annotated[dt.date | None, Query(description="last day, inclusive")] = None,
    freq: Annotated[Literal["D", "W", "M"], Query(description="day, ISO week or month")] = "D",
) -> Response:
    """Sales history of one product, summed per day, week (Monday) or month (first day)."""
    if start is not None and end is not None and start > end:
        # The same shape as every other 422, which is what the schema documents.
        error = {"type": "value_error", "loc": ("query", "end"), "msg": "start is after end"}
        raise RequestValidationError([{**error, "input": end.isoformat()}])
    history = service.get_history(product_id, start=start, end=end, freq=freq)
    # Points are cached as JSON-ready dicts in the documented shape; serializing
    # them once with orjson keeps a 5-year history (1,900 points) cheap to send.
    body = {
        "product_id": product_id,
        "freq": freq,
        "data_version": history.data_version,
        "points": history.points,
    }
    return Response(orjson.dumps(body), media_type="application/json")
