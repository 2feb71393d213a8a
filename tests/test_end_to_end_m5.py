"""End to end on the real M5 file: upload it over HTTP, train, forecast, read the backtest."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.config import Settings
from tests.conftest import ADMIN_TOKEN, M5_CSV, require_shared_data

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PRODUCTS = ["CA_1-FOODS_3", "TX_3-HOBBIES_2", "WI_2-HOUSEHOLD_1"]


def test_m5_file_ingests_trains_and_forecasts(settings: Settings) -> None:
    body = require_shared_data(M5_CSV).read_bytes()
    with TestClient(create_app(settings)) as client:
        uploaded = client.post(
            "/sales",
            content=body,
            params={"product_cols": "store_id,dept_id", "quantity_col": "sales"},
            headers={**ADMIN, "Content-Type": "text/csv"},
        )
        assert uploaded.status_code == 201, uploaded.text[:500]
        assert uploaded.json()["rows"] == 132_567
        products = {p["product_id"]: p for p in client.get("/products").json()}
        assert len(products) == 70
        # the five Christmas days are missing upstream: real gaps, kept as gaps
        assert products["CA_1-FOODS_3"]["sales_days"] < 1_919

        trained_metrics = {}
        for product_id in PRODUCTS:
            trained = client.post(f"/products/{product_id}/train", headers=ADMIN)
            assert trained.status_code == 201, trained.text
            metrics = trained_metrics[product_id] = trained.json()["metrics"]
            assert metrics["holdout_days"] == 28
            assert math.isfinite(metrics["mase"])
            # a year-and-week-seasonal model should not be wildly worse than naive
            assert metrics["mase"] < 3 * metrics["mase_seasonal_naive"] + 0.5

            forecast = client.get(f"/products/{product_id}/forecast", params={"horizon": 28})
            assert forecast.status_code == 200
            points = forecast.json()["points"]
            assert points[0]["ds"] == "2016-04-25"
            assert len(points) == 28
            level = sum(p["yhat"] for p in points) / 28
            history = client.get(
                f"/products/{product_id}/sales", params={"start": "2016-03-28"}
            ).json()["points"]
            recent = sum(p["quantity"] for p in history) / len(history)
            # the forecast continues the series rather than inventing a new level
            assert 0.5 * recent < level < 1.5 * recent

        for product_id in PRODUCTS:
            [stored] = client.get(f"/products/{product_id}/models").json()
            assert stored["metrics"] == trained_metrics[product_id]
            assert stored["train_end"] == "2016-04-24"
            assert stored["data_version"] == 1
