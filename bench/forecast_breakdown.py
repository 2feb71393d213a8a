"""Where a warm forecast's time goes: the ASGI app step by step, next to the bare endpoint.

In one process, on one event loop, with no network: a warm ``GET
/products/{id}/forecast`` through salescast's whole ASGI app and through the
bare FastAPI endpoint of ``bench/http_load.py`` (same bytes), then each step
of salescast's answer on its own: the app without its middleware (FastAPI's
router alone), the service's read (version read + L1 hit), the version read,
the L1 hit, encoding the body, building the response. Every candidate runs in
the same interleaved blocks (``interleave.atime_blocks``); the table gives the
median µs per call. What uvicorn adds (HTTP parsing, the socket, the access
log) is the same for both servers and is measured by ``http_load.py``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import interleave
import orjson
import workspace
from report import Section, run_script
from starlette.responses import Response

from salescast.api.app import create_app

PRODUCT = workspace.M5_PRODUCTS[0]
PATH = f"/products/{PRODUCT}/forecast"


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"horizon=30",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def asgi_get(app: Any, path: str, *, owner: Any = None) -> Callable[[], Awaitable[int]]:
    """A coroutine function doing one GET through ``app``; returns the status.

    ``owner``: the FastAPI app ``app`` belongs to, when ``app`` is a part of
    it called on its own (the app puts itself in the scope).
    """

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> int:
        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        async with contextlib.AsyncExitStack() as stack:
            scope = _scope(path)
            # What FastAPI's own outer middleware puts in the scope: needed when
            # the router is called without the middleware stack around it.
            scope["fastapi_middleware_astack"] = scope["fastapi_astack"] = stack
            if owner is not None:
                scope["app"] = owner
            await app(scope, receive, send)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        return status

    return call


def build(quick: bool, command: str) -> Section:
    section = Section("Where a warm forecast's time goes (in process, no network)", command)
    section.text(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    database = workspace.ensure_m5_store()
    settings = workspace.settings_for(database)
    app = create_app(settings)
    service = app.state.service
    forecast = service.predict_sales(PRODUCT, 30)  # warm: computed once, in L1 from now on
    body = orjson.dumps(forecast)
    os.environ["BENCH_BARE_BODY"] = _write_body(body)
    import bare_app  # reads BENCH_BARE_BODY at import

    version = service.models.get_active_version(PRODUCT)

    async def service_read() -> object:
        return await service.aread_forecast(PRODUCT, horizon=30)

    async def version_read() -> object:
        return service.models.get_active_version(PRODUCT)

    async def l1_hit() -> object:
        return service.forecasts.peek_forecast(PRODUCT, version, 30)

    async def encode() -> object:
        return orjson.dumps(forecast)

    async def response() -> object:
        return Response(body, media_type="application/json", headers={"ETag": '"x"'})

    candidates: dict[str, Callable[[], Awaitable[object]]] = {
        "bare endpoint (whole app)": asgi_get(bare_app.app, PATH),
        "salescast (whole app)": asgi_get(app, PATH),
        "salescast, router only (no middleware)": asgi_get(app.router, PATH, owner=app),
        "service.aread_forecast (version read + L1 hit)": service_read,
        "version read (SQLite)": version_read,
        "L1 hit (peek_forecast)": l1_hit,
        "orjson.dumps of the forecast": encode,
        "Response(...) of those bytes": response,
    }
    blocks = 15 if quick else 41

    async def measure() -> dict[str, interleave.Timing]:
        counts = await interleave.acalls_for(candidates, budget_seconds=0.02)
        return await interleave.atime_blocks(candidates, blocks=blocks, calls=counts)

    timings = interleave.run_async(measure())
    bare = timings["bare endpoint (whole app)"].median
    rows = [
        [name, f"{timing.micros:.1f}", f"{(timing.median - bare) * 1e6:+.1f}" if i < 3 else ""]
        for i, (name, timing) in enumerate(timings.items())
    ]
    section.table(["step", "µs per call (median block)", "over the bare endpoint"], rows)
    service.close()
    return section


def _write_body(body: bytes) -> str:
    path = workspace.WORK / "breakdown_body.json"
    workspace.WORK.mkdir(exist_ok=True)
    path.write_bytes(body)
    return str(path)


if __name__ == "__main__":
    sys.exit(run_script("forecast_breakdown.py", build))
