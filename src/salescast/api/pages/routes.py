"""The dashboard's pages: products, one product, cache health, training jobs.

Server-rendered (Jinja2, autoescaped) from the same functions the API routes
call, so a page shows what the API answers. Reads are open like the API's;
the only writes (activate a version) are the API's own admin endpoints,
called by dashboard.js with the token the user types. Every response carries
a Content-Security-Policy that allows this origin only: a page that tried to
load anything from elsewhere would fail in the browser, not quietly work
while online.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import salescast
from salescast.api.dependencies import Jobs, Service
from salescast.api.pages.svg_chart import ForecastPoint, HistoryPoint, render_chart
from salescast.api.product_params import ProductListParams
from salescast.api.routes.cache import cache_stats, cache_status
from salescast.api.routes.training import list_jobs
from salescast.forecasting import NoActiveModelError
from salescast.forecasting.prediction import MAX_HORIZON_DAYS
from salescast.service import SalescastService
from salescast.store import ProductNotFoundError

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HISTORY_DAYS_SHOWN = 120
"""Days of history before the forecast on the product chart (at least; 3x the horizon)."""

_templates = Environment(
    loader=PackageLoader("salescast.api.pages", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

SORT_CHOICES = [
    ("id", "name, A to Z"),
    ("-id", "name, Z to A"),
    ("-sales_days", "most sales days"),
    ("sales_days", "fewest sales days"),
    ("mase", "backtest MASE, best first"),
    ("-mase", "backtest MASE, worst first"),
    ("mase_vs_naive", "MASE vs seasonal-naive, best first"),
    ("-mase_vs_naive", "MASE vs seasonal-naive, worst first"),
]


class ForecastPageParams(BaseModel):
    """`?horizon=&interval=` of the product page, within the forecast route's bounds."""

    model_config = ConfigDict(extra="forbid")

    horizon: int = Field(default=30, ge=1, le=MAX_HORIZON_DAYS)
    interval: float = Field(default=0.8, gt=0, lt=1)


def _page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(version=salescast.__version__, **context)
    return HTMLResponse(
        html, status_code=status_code, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY}
    )


def _filled(request: Request) -> dict[str, str]:
    """The query parameters a GET form sent, without its empty fields ("any")."""
    return {key: value for key, value in request.query_params.items() if value != ""}


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


@router.get("/", response_class=HTMLResponse)
def products_page(request: Request, service: Service) -> HTMLResponse:
    """Products: search, filters, sorts and pages, through GET /products' parameters."""
    filled = _filled(request)
    try:
        params = ProductListParams.model_validate(filled)
    except ValidationError as exc:
        return _page(
            "products.html", 422, params=ProductListParams(), page=None, errors=_problems(exc),
            sorts=SORT_CHOICES, links={},
        )  # fmt: skip
    page = service.store.find_products(params.to_query())
    links = {}
    if params.offset > 0:
        links["previous"] = request.url.include_query_params(
            offset=max(params.offset - params.limit, 0)
        )
    if page.next_offset is not None:
        links["next"] = request.url.include_query_params(offset=page.next_offset)
    return _page(
        "products.html", params=params, page=page, errors=[], sorts=SORT_CHOICES, links=links
    )


@router.get("/ui/products/{product_id}", response_class=HTMLResponse)
def product_page(product_id: str, request: Request, service: Service) -> HTMLResponse:
    """One product: history and forecast with its band, versions with metrics, activation."""
    try:
        product = service.store.get_listed_product(product_id)
    except ProductNotFoundError as exc:
        return _page("error.html", 404, heading="Unknown product", message=str(exc))
    try:
        params = ForecastPageParams.model_validate(_filled(request))
        errors: list[str] = []
    except ValidationError as exc:
        params, errors = ForecastPageParams(), _problems(exc)
    forecast_points: list[ForecastPoint] = []
    no_model = None
    model_version = None
    try:
        read = service.read_forecast(product_id, horizon=params.horizon, interval=params.interval)
        assert read.forecast is not None  # no ETag was given
        model_version = read.forecast["model_version"]
        forecast_points = [
            ForecastPoint(
                dt.date.fromisoformat(p["ds"]), p["yhat"], p["yhat_lower"], p["yhat_upper"]
            )
            for p in read.forecast["points"]
        ]
    except NoActiveModelError as exc:
        no_model = str(exc)
    days = max(HISTORY_DAYS_SHOWN, 3 * params.horizon)
    history = _history_tail(service, product_id, product.last_date, days=days)
    chart = render_chart(
        history,
        forecast_points,
        title=f"{product_id}: sales history and {params.horizon}-day forecast "
        f"with its {params.interval:.0%} interval",
    )
    return _page(
        "product.html",
        422 if errors else 200,
        product=product,
        params=params,
        errors=errors,
        chart=chart,
        no_model=no_model,
        model_version=model_version,
        versions=service.list_models(product_id),
        max_horizon=MAX_HORIZON_DAYS,
    )


def _history_tail(
    service: SalescastService, product_id: str, last: dt.date | None, *, days: int
) -> list[HistoryPoint]:
    """The product's last `days` days of sales (the cached history read of GET .../sales)."""
    if last is None:
        return []
    history = service.get_history(product_id, start=last - dt.timedelta(days=days - 1))
    return [HistoryPoint(dt.date.fromisoformat(p["date"]), p["quantity"]) for p in history.points]


@router.get("/ui/cache", response_class=HTMLResponse)
def cache_page(request: Request, service: Service) -> HTMLResponse:
    """Cache health: backend, topology, breaker, per-namespace hits and hit rates, warm-up."""
    status = cache_status(service, request)
    stats = cache_stats(service)
    return _page("cache.html", status=status, stats=stats)


@router.get("/ui/jobs", response_class=HTMLResponse)
def jobs_page(jobs: Jobs) -> HTMLResponse:
    """Recent training jobs with their progress (GET /jobs)."""
    listed = list_jobs(jobs, limit=20)
    running = any(job.status in ("queued", "running") for job in listed)
    return _page("jobs.html", jobs=listed, running=running)
