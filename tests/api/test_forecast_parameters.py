"""The forecast route parses its query by hand (speed); it must answer exactly as FastAPI would.

A reference route declares the same parameters the usual way (``Query(...)``);
for every query string below both must give the same status and body, and the
OpenAPI schema must document the same parameters.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salescast.api.routes.forecasts import HORIZON_DESCRIPTION
from salescast.forecasting.prediction import MAX_HORIZON_DAYS

PRODUCT = "CA_1-FOODS_3"


def reference_app() -> FastAPI:
    app = FastAPI()

    @app.get("/products/{product_id}/forecast")
    def forecast(
        product_id: str,
        horizon: Annotated[
            int, Query(ge=1, le=MAX_HORIZON_DAYS, description=HORIZON_DESCRIPTION)
        ] = 30,
        interval: Annotated[
            float | None, Query(gt=0, lt=1, description="width of the uncertainty interval")
        ] = None,
        format: Annotated[
            Literal["json", "png", "svg", "csv"] | None,
            Query(description="json, png, svg or csv; overrides the Accept header"),
        ] = None,
    ) -> dict[str, object]:
        del format
        return {"horizon": horizon, "interval": interval}

    return app


@pytest.fixture(scope="module")
def reference() -> TestClient:
    return TestClient(reference_app())


QUERIES = [
    "",
    "horizon=7",
    "horizon=0",
    "horizon=731",
    f"horizon={MAX_HORIZON_DAYS}",
    "horizon=x",
    "horizon=",
    "horizon=1e3",
    "horizon=7.0",
    "horizon=%207",
    "horizon=-3",
    "horizon=5&horizon=6",
    "interval=0.5",
    "interval=0",
    "interval=1",
    "interval=1.5",
    "interval=abc",
    "interval=",
    "interval=nan",
    "interval=inf",
    "interval=1e-3",
    "horizon=x&interval=2",
    "horizon=0&interval=0",
    "other=1",
    "format=json",
    "format=gif",
    "format=",
    "format=JSON",
    "format=json&horizon=0",
]


def outcome(client: TestClient, query: str) -> tuple[int, object]:
    response = client.get(f"/products/{PRODUCT}/forecast?{query}")
    if response.status_code == 200:
        body = response.json()
        return 200, (body["horizon"], body["interval"])
    return response.status_code, response.json()


@pytest.mark.parametrize("query", QUERIES)
def test_answers_match_fastapis_own_parameter_handling(
    client: TestClient, reference: TestClient, query: str
) -> None:
    status, body = outcome(client, query)
    expected_status, expected = outcome(reference, query)
    assert status == expected_status
    if status == 200:
        horizon, interval = expected  # type: ignore[misc]
        assert body == (horizon, 0.8 if interval is None else interval)
    else:
        assert body == expected


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    horizon=st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 800).map(str)),
    interval=st.one_of(st.none(), st.text(max_size=6), st.floats(-1, 2).map(str)),
)
def test_any_query_gets_the_same_answer_as_fastapi(
    client: TestClient, reference: TestClient, horizon: str | None, interval: str | None
) -> None:
    params = {"horizon": horizon, "interval": interval}
    query = urlencode({name: value for name, value in params.items() if value is not None})
    test_answers_match_fastapis_own_parameter_handling(client, reference, query)


def test_openapi_documents_the_parameters_as_fastapi_would(
    client: TestClient, reference: TestClient
) -> None:
    path = "/products/{product_id}/forecast"
    ours = client.get("/openapi.json").json()["paths"][path]["get"]["parameters"]
    theirs = reference.get("/openapi.json").json()["paths"][path]["get"]["parameters"]
    assert ours == theirs


def test_a_repeated_query_gets_the_same_answer_every_time(
    client: TestClient, reference: TestClient
) -> None:
    # Valid query strings are remembered once parsed; invalid ones never are.
    for query in ["horizon=7&interval=0.5", "horizon=0", "horizon=7&interval=0.5", "horizon=0"]:
        for _ in range(2):
            test_answers_match_fastapis_own_parameter_handling(client, reference, query)
