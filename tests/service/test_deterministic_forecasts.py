"""The same version and arguments give the same forecast bytes, however often it is computed.

Each test makes the forecast be computed again (`X-Cache: MISS`) where it used
to be re-sampled: after a cache clear, in a second worker, after a restart, in
another process. Bodies are compared as bytes, with their ETags.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.config import Settings
from salescast.service import SalescastService
from tests.conftest import ADMIN_TOKEN, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PRODUCT = "CA_1-FOODS_3"
FORECAST = f"/products/{PRODUCT}/forecast?horizon=14&interval=0.9"
MakeClient = Callable[[Settings], TestClient]


def computed(client: TestClient) -> httpx.Response:
    """A forecast this client's service computed itself (not served from a cache)."""
    response = client.get(FORECAST)
    assert response.status_code == 200, response.text
    assert response.headers["x-cache"] == "MISS"
    return response


def assert_same_forecast(first: httpx.Response, again: httpx.Response) -> None:
    assert again.headers["etag"] == first.headers["etag"]
    assert again.content == first.content


def test_a_cleared_cache_recomputes_the_same_bytes_under_the_same_etag(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    client = make_client(redis_settings)
    first = computed(client)
    assert client.delete("/cache/clear", headers=ADMIN).status_code == 200
    assert_same_forecast(first, computed(client))
    # A client holding the first body's ETag is still right to keep it.
    revalidated = client.get(FORECAST, headers={"If-None-Match": first.headers["etag"]})
    assert revalidated.status_code == 304


def test_a_second_worker_computing_it_itself_gives_the_same_bytes(
    make_client: MakeClient, redis_settings: Settings
) -> None:
    one, two = make_client(redis_settings), make_client(redis_settings)
    first = computed(one)
    assert one.delete("/cache/clear", headers=ADMIN).status_code == 200  # L2 too
    assert_same_forecast(first, computed(two))


def test_a_restarted_service_on_the_same_store_gives_the_same_bytes(
    demo_database_url: str,
) -> None:
    settings = make_settings(demo_database_url)  # no Redis: nothing outlives the process
    bodies = []
    for _ in range(2):  # the first run, then the "restart"
        service = SalescastService(settings)
        try:
            with TestClient(create_app(settings, service=service)) as client:
                bodies.append(computed(client))
        finally:
            service.close()
    assert_same_forecast(bodies[0], bodies[1])


def test_generated_at_is_the_versions_trained_at_time(client: TestClient) -> None:
    body = client.get(FORECAST).json()
    versions = client.get(f"/products/{PRODUCT}/models").json()
    [active] = [v for v in versions if v["version"] == body["model_version"]]
    trained_at = dt.datetime.fromisoformat(active["created_at"])
    assert dt.datetime.fromisoformat(body["generated_at"]) == trained_at.replace(microsecond=0)


def test_another_process_computes_the_same_forecast(demo_database_url: str) -> None:
    settings = make_settings(demo_database_url)
    service = SalescastService(settings)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            served = computed(client).json()
    finally:
        service.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}
    env["SALESCAST_DATABASE_URL"] = demo_database_url
    args = ["forecast", PRODUCT, "--horizon", "14", "--interval", "0.9", "--format", "json"]
    result = subprocess.run(
        [sys.executable, "-m", "salescast", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == served
