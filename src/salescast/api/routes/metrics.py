"""Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from salescast.api.metrics import Metrics

router = APIRouter(tags=["monitoring"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    """Prometheus text format: HTTP traffic and cache counters of every worker."""
    exporter: Metrics = request.app.state.metrics
    return Response(exporter.render(), media_type=CONTENT_TYPE_LATEST)
