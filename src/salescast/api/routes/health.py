"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from salescast.api.dependencies import Service
from salescast.api.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
def healthz() -> HealthResponse:
    """200 while the process lives."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "the store does not answer"}},
)
def readyz(service: Service, request: Request, response: Response) -> ReadyResponse:
    """200 when the store answers; the body tells whether warm-up runs and how far it is."""
    warmup = request.app.state.warmup.progress()
    try:
        service.database.ping()
    except Exception:  # any failure to answer means not ready, whatever the driver raises
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return ReadyResponse(status="unavailable", store="error", warmup=warmup)
    return ReadyResponse(status="ready", store="ok", warmup=warmup)
