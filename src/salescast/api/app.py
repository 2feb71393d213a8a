"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

import salescast
from salescast.api.errors import install_error_handlers
from salescast.api.jobs import JobManager
from salescast.api.metrics import Metrics
from salescast.api.pages import router as pages_router
from salescast.api.routes import (
    cache,
    docs,
    forecast_batches,
    forecasts,
    health,
    metrics,
    models,
    products,
    sales,
    training,
)
from salescast.config import Settings, load_settings
from salescast.service import SalescastService, dask_scheduler_from
from salescast.warmup import Warmup


def create_app(settings: Settings, *, service: SalescastService | None = None) -> FastAPI:
    """Build an app over `settings`; nothing happens at import time and nothing is global.

    Pass `service` to share one (and its store) between apps, as tests do.
    The app owns what it creates and closes it on shutdown.
    """
    owned = service is None
    service = service or SalescastService(settings)
    jobs = JobManager(
        service,
        jobs=settings.train_jobs,
        scheduler=dask_scheduler_from(settings),
        heartbeat_interval_seconds=settings.job_heartbeat_seconds,
        stale_after_seconds=settings.job_stale_after_seconds,
    )
    warmup = Warmup(
        service,
        max_products=settings.warmup_max_products,
        concurrency=settings.warmup_concurrency,
    )
    exporter = Metrics(service.cache.stats)
    exporter.add_training(model_counts=service.registry.model_counts, jobs=jobs.store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Marks failed the jobs of dead workers and starts this one's heartbeats;
        # on a thread, since a store that does not answer may take a while to say so.
        await asyncio.to_thread(jobs.start)
        if settings.warmup_on_startup:
            warmup.start()  # in the background: /healthz answers at once
        try:
            yield
        finally:
            jobs.shutdown()
            exporter.close()
            if owned:
                service.close()

    app = FastAPI(
        title="salescast",
        version=salescast.__version__,
        description="Sales forecasting: one Prophet model per product, versioned, cached.",
        lifespan=lifespan,
        # /docs and /redoc are salescast's own (routes/docs.py): no asset from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.jobs = jobs
    app.state.warmup = warmup
    app.state.metrics = exporter
    install_error_handlers(app)
    # Forecasts first: routes are matched in order, and the forecast route is
    # the busiest by far (each route tried before it costs every request).
    app.router.routes.append(forecasts.SERVED_ROUTE)
    for module in (
        forecasts,
        forecast_batches,
        health,
        products,
        sales,
        training,
        models,
        cache,
        metrics,
    ):
        app.include_router(module.router)
    docs.install_docs(app)
    # The dashboard last, so no API request tries its routes first.
    app.include_router(pages_router)
    app.mount("/ui/static", StaticFiles(packages=[("salescast.api.pages", "static")]), "ui-static")
    # Starlette builds each middleware by calling what it is given with the
    # app: plain functions returning the ASGI callable, so that no adapter
    # object adds a layer (each layer is an await on every request).
    app.add_middleware(_metrics_middleware, metrics=exporter)
    app.add_middleware(_reject_nul_paths)
    return app


def _metrics_middleware(app: ASGIApp, *, metrics: Metrics) -> ASGIApp:
    return metrics.middleware(app)


def _reject_nul_paths(app: ASGIApp) -> ASGIApp:
    """404 for a path holding a NUL character (``%00``), before any route runs.

    No product id, version or job id can hold one (ingest admits letters,
    digits, ``_ . -``), and PostgreSQL refuses NUL in any text parameter with a
    DataError: a lookup with one would answer 500 or 503 instead of 404, and on
    the forecast route fail every other read batched with it.
    """

    async def rejecting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\x00" in scope["path"]:
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)

    return rejecting


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: every worker process reads the environment itself."""
    return create_app(load_settings())
