"""Product listing and sales history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from salescast.api.dependencies import Service
from salescast.api.product_params import ProductListParams
from salescast.api.schemas import (
    ErrorResponse,
    ProductModel,
    SalesHistoryResponse,
)
from salescast.store import ProductPage

router = APIRouter(tags=["products"])


@router.get(
    "/products",
    response_model=list[ProductModel],
    responses={
        200: {
            "headers": {
                "X-Total-Count": {"description": "products matching the filters, on all pages"},
                "Link": {"description": '`<URL>; rel="next"` while more pages follow'},
            }
        }
    },
)
def list_products(
    params: Annotated[ProductListParams, Query()], service: Service, request: Request
) -> Response:
    """One page of products (sales days, dates, active version and its backtest MASE);
    the total is in `X-Total-Count`, the next page in `Link`."""
    page = service.store.find_products(params.to_query())
    body = [ProductModel(**vars(p)).model_dump(mode="json") for p in page.products]
    return Response(
        orjson.dumps(body), media_type="application/json", headers=page_headers(page, request)
    )


def page_headers(page: ProductPage, request: Request) -> dict[str, str]:
    """`X-Total-Count`, and a `Link` to the next page (same filters) unless this is the last."""
    headers = {"X-Total-Count": str(page.total)}
    if page.next_offset is not None:
        following = request.url.include_query_params(offset=page.next_offset)
        headers["Link"] = f'<{following}>; rel="next"'
    return headers


@router.get(
    "/products/{product_id}",
    response_model=ProductModel,
    responses={404: {"model": ErrorResponse}},
)
def get_product(product_id: str, service: Service) -> ProductModel:
    """One product: sales days, first/last date, active version and its backtest MASE."""
    return ProductModel(**vars(service.store.get_listed_product(product_id)))


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
