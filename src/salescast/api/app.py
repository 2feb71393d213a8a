"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import salescast
from salescast.api.errors import install_error_handlers
from salescast.api.jobs import JobManager
from salescast.api.routes import forecasts, health, models, products, sales, training
from salescast.config import Settings, load_settings
from salescast.service import SalescastService


def create_app(settings: Settings, *, service: SalescastService | None = None) -> FastAPI:
    """Build an app over `settings`; nothing happens at import time and nothing is global.

    Pass `service` to share one (and its store) between apps, as tests do.
    The app owns what it creates and closes it on shutdown.
    """
    owned = service is None
    service = service or SalescastService(settings)
    jobs = JobManager(service, jobs=settings.train_jobs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            jobs.shutdown()
            if owned:
                service.close()

    app = FastAPI(
        title="salescast",
        version=salescast.__version__,
        description="Sales forecasting: one Prophet model per product, versioned, cached.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.jobs = jobs
    install_error_handlers(app)
    for module in (health, products, sales, training, models, forecasts):
        app.include_router(module.router)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: every worker process reads the environment itself."""
    return create_app(load_settings())
