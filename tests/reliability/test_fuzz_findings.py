"""Regression tests for what the API fuzzing found: answers that broke their documented schema."""

from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient

from salescast.service import SalescastService


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


def test_a_json_upload_that_does_not_parse_gets_the_documented_400_with_its_line(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Found by schemathesis: the 400 for unparsable JSON carried a string `detail`
    # where POST /sales documents an IngestErrorResponse (message, total, problems).
    body = b'[{"date": "2024-01-01", "product_id": "a", "quantity": 1},\n  oops]'
    response = client.post(
        "/sales", content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["total"] == 1
    [problem] = detail["problems"]
    assert (problem["line"], problem["unit"], problem["column"]) == (2, "line", None)
    assert "not valid JSON" in problem["reason"]


def test_upload_columns_naming_one_column_twice_get_422_in_the_validation_shape(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Found by schemathesis: date_col=0&product_cols=0 gave a 422 with a string `detail`.
    response = client.post(
        "/sales",
        content=b"0,quantity\n2024-01-01,1\n",
        params={"date_col": "day", "product_cols": "day"},
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "product_cols"]
    assert "twice" in error["msg"]


def test_activating_a_version_number_beyond_any_integer_column_gets_422_not_500(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Found by `schemathesis run` against a live server: SQLite raised OverflowError on
    # 3996518002242561075888187209144074240 (PostgreSQL's INTEGER ends at 2**31 - 1).
    url = "/products/CA_1-FOODS_3/models/{}/activate"
    huge = client.post(url.format(3996518002242561075888187209144074240), headers=admin)
    assert huge.status_code == 422
    assert huge.json()["detail"][0]["loc"] == ["path", "version"]
    assert client.post(url.format(2**31 - 1), headers=admin).status_code == 404


def test_the_cli_refuses_a_version_number_beyond_any_integer_column_in_one_line(
    demo_service: SalescastService,
) -> None:
    # The HTTP finding above, through `salescast models activate`: it printed a traceback.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}
    env["SALESCAST_DATABASE_URL"] = demo_service.settings.database_url
    result = subprocess.run(
        [sys.executable, "-m", "salescast", "models", "activate", "CA_1-FOODS_3", "9" * 30],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line == f"salescast: product 'CA_1-FOODS_3' has no model version {'9' * 30}"


def test_a_train_request_whose_body_is_not_json_gets_a_documented_400(
    client: TestClient, admin: dict[str, str]
) -> None:
    # Found by `schemathesis run --checks all`: FastAPI's 400 for an unparsable body
    # was missing from the operation's documented responses.
    response = client.post(
        "/train", content=b"T\x0e\xffQ", headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)
    documented = client.get("/openapi.json").json()["paths"]["/train"]["post"]["responses"]
    assert documented["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
