"""The bare endpoint the HTTP benchmark compares with: FastAPI returning fixed bytes.

Serves ``GET /products/{product_id}/forecast`` with the bytes of the file named
by ``BENCH_BARE_BODY`` (a forecast body saved from the real server), so both
servers send the same bytes; nothing is computed, validated or cached. The
same under ``/sync/...`` is a plain ``def`` handler with two plain ``def``
dependencies, the shape of salescast's forecast route: FastAPI runs each of
them in its thread pool, which shows what those hops cost by themselves.
Run: ``uvicorn bare_app:app --app-dir bench``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response

BODY = Path(os.environ.get("BENCH_BARE_BODY", "/dev/null")).read_bytes()

app = FastAPI()


@app.get("/products/{product_id}/forecast")
async def forecast(product_id: str) -> Response:
    return Response(content=BODY, media_type="application/json")


def first_dependency(request: Request) -> str:
    return request.url.path


def second_dependency(request: Request) -> int:
    return len(request.query_params)


@app.get("/sync/products/{product_id}/forecast")
def forecast_sync(
    product_id: str,
    path: Annotated[str, Depends(first_dependency)],
    params: Annotated[int, Depends(second_dependency)],
) -> Response:
    return Response(content=BODY, media_type="application/json")
