"""FastAPI dependencies that hand route handlers the objects the app was built with.

They are `async def` on purpose: they only read `app.state`, and FastAPI runs
a plain `def` dependency in its thread pool, one thread hop per dependency
per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from salescast.api.jobs import JobManager
from salescast.config import Settings
from salescast.service import SalescastService


async def get_service(request: Request) -> SalescastService:
    service: SalescastService = request.app.state.service
    return service


async def get_jobs(request: Request) -> JobManager:
    jobs: JobManager = request.app.state.jobs
    return jobs


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings)]
Service = Annotated[SalescastService, Depends(get_service)]
Jobs = Annotated[JobManager, Depends(get_jobs)]
