"""The bare endpoint the HTTP benchmark compares with: FastAPI returning fixed bytes.

Serves ``GET /products/{product_id}/forecast`` with the bytes of the file named
by ``BENCH_BARE_BODY`` (a forecast body saved from the real server), so both
servers send the same bytes; nothing is computed, validated or cached.
Run: ``uvicorn bare_app:app --app-dir bench``.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response

BODY = Path(os.environ.get("BENCH_BARE_BODY", "/dev/null")).read_bytes()

app = FastAPI()


@app.get("/products/{product_id}/forecast")
async def forecast(product_id: str) -> Response:
    return Response(content=BODY, media_type="application/json")
