"""Regression tests for what the API fuzzing found: answers that broke their documented schema."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_sales_range_whose_start_is_after_its_end_gets_422_in_the_validation_shape(
    client: TestClient,
) -> None:
    # Found by schemathesis: `end=0` parses as 1970-01-01, and the 422 carried a
    # string `detail` where the schema documents FastAPI's list of validation errors.
    response = client.get(
        "/products/CA_1-FOODS_3/sales", params={"start": "2016-02-01", "end": "2016-01-01"}
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "end"]
    assert "start is after end" in error["msg"]
