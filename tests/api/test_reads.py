"""Read endpoints through the real ASGI app: products, history, forecasts, ETags, errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from salescast.api.schemas import ForecastResponse, SalesHistoryResponse
from salescast.store import Database

PRODUCT = "CA_1-FOODS_3"


def test_health_and_readiness_answer_200(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["store"] == "ok"


def test_products_list_the_demo_series_with_their_active_version(client: TestClient) -> None:
    products = {p["product_id"]: p for p in client.get("/products").json()}
    assert len(products) == 5
    assert products[PRODUCT]["active_version"] == 1
    assert products[PRODUCT]["first_date"] == "2014-04-25"
    assert products[PRODUCT]["sales_days"] == 729


def test_sales_history_is_resampled_per_month(client: TestClient) -> None:
    response = client.get(f"/products/{PRODUCT}/sales", params={"freq": "M", "start": "2016-03-01"})
    assert response.status_code == 200
    body = response.json()
    assert [p["date"] for p in body["points"]] == ["2016-03-01", "2016-04-01"]
    assert body["data_version"] == 1
    SalesHistoryResponse.model_validate(body)  # the documented schema


def test_bad_history_parameters_get_422_naming_the_parameter(client: TestClient) -> None:
    for params in (
        {"freq": "Y"},
        {"start": "yesterday"},
        {"start": "2016-02-01", "end": "2016-01-01"},
    ):
        response = client.get(f"/products/{PRODUCT}/sales", params=params)
        assert response.status_code == 422, params
        assert "detail" in response.json()


def test_unknown_product_gets_404_everywhere(client: TestClient) -> None:
    for path in ("/products/nope/sales", "/products/nope/forecast", "/products/nope/models"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"]


def test_forecast_has_the_documented_shape_and_an_etag(client: TestClient) -> None:
    response = client.get(f"/products/{PRODUCT}/forecast", params={"horizon": 7, "interval": 0.9})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "product_id",
        "model_version",
        "frequency",
        "horizon",
        "interval",
        "generated_at",
        "points",
    }
    assert (body["model_version"], body["horizon"], len(body["points"])) == (1, 7, 7)
    assert body["frequency"] == "D"
    assert set(body["points"][0]) == {"ds", "yhat", "yhat_lower", "yhat_upper"}
    assert response.headers["etag"] == f'"{PRODUCT}.v1.h7.i0.9"'
    assert response.headers["content-type"] == "application/json"
    ForecastResponse.model_validate_json(response.content, strict=False)  # the documented schema


def test_if_none_match_with_the_current_etag_gets_304_without_a_body(client: TestClient) -> None:
    etag = client.get(f"/products/{PRODUCT}/forecast").headers["etag"]
    response = client.get(f"/products/{PRODUCT}/forecast", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    other = client.get(f"/products/{PRODUCT}/forecast?horizon=8", headers={"If-None-Match": etag})
    assert other.status_code == 200


@pytest.mark.parametrize("local_reads", [True, False], ids=["read-on-the-loop", "awaited-read"])
def test_forecast_tiers_etags_and_errors_are_the_same_on_both_paths(
    client: TestClient, local_reads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Local reads (SQLite) are made synchronously on the event loop; others are
    # awaited (on PostgreSQL a batched read; on SQLite the awaited read falls
    # back to the synchronous one). Both serve L1 hits on the loop. Same answers.
    monkeypatch.setattr(Database, "reads_are_local", property(lambda _self: local_reads))
    url = f"/products/{PRODUCT}/forecast?horizon=9"
    first, second = client.get(url), client.get(url)
    assert [first.headers["x-cache"], second.headers["x-cache"]] == ["MISS", "HIT-L1"]
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"] == f'"{PRODUCT}.v1.h9.i0.8"'
    revalidated = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert (revalidated.status_code, revalidated.content) == (304, b"")
    assert client.get("/products/nope/forecast").status_code == 404
    stats = client.get("/cache/stats").json()["namespaces"]["prediction"]
    # The loop's L1 peek counts its hit and leaves the miss to the full lookup.
    assert (stats["l1"]["hits"], stats["misses"], stats["computations"]) == (1, 1, 1)


def test_forecast_parameters_out_of_range_get_422(client: TestClient) -> None:
    for params in ({"horizon": 0}, {"horizon": 731}, {"horizon": "x"}, {"interval": 1.5}):
        assert client.get(f"/products/{PRODUCT}/forecast", params=params).status_code == 422


def test_product_without_a_model_gets_409_with_a_hint_to_train(
    client: TestClient, admin: dict[str, str]
) -> None:
    rows = [{"date": "2024-01-01", "product_id": "fresh", "quantity": 1}]
    assert client.post("/sales", json=rows, headers=admin).status_code == 201
    response = client.get("/products/fresh/forecast")
    assert response.status_code == 409
    assert "train" in response.json()["detail"]


def test_openapi_lists_every_endpoint_with_its_error_responses(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/healthz",
        "/readyz",
        "/sales",
        "/products",
        "/products/{product_id}/sales",
        "/products/{product_id}/train",
        "/train",
        "/jobs/{job_id}",
        "/products/{product_id}/models",
        "/products/{product_id}/models/{version}/activate",
        "/products/{product_id}/forecast",
    ):
        assert path in paths, path
    assert {"404", "409", "422"} <= set(
        paths["/products/{product_id}/forecast"]["get"]["responses"]
    )
    assert {"400", "401", "403", "413"} <= set(paths["/sales"]["post"]["responses"])


@pytest.mark.parametrize(
    "path",
    [
        "/products/a%00b/forecast",
        "/products/a%00b/sales",
        "/products/a%00b/models",
        "/products/a%00b/models/1",
        "/jobs/a%00b",
    ],
)
def test_a_path_with_a_nul_character_is_404_on_every_store(client: TestClient, path: str) -> None:
    # PostgreSQL refuses NUL in text parameters (DataError): without the check
    # these were 500 or 503, and a forecast's failed every read batched with it.
    answer = client.get(path)

    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}
