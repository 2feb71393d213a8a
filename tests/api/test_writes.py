"""State-changing endpoints: admin token, uploads all-or-nothing, training, jobs, activation."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.service import SalescastService
from tests.conftest import make_settings

PRODUCT = "CA_1-HOBBIES_1"
WRITES = [
    ("post", "/sales"),
    ("post", f"/products/{PRODUCT}/train"),
    ("post", "/train"),
    ("post", f"/products/{PRODUCT}/models/1/activate"),
    ("post", f"/products/{PRODUCT}/models/unpin"),
    ("delete", f"/products/{PRODUCT}/models/1"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_state_changes_need_a_bearer_token(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = client.request(method, path, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 403


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_state_changes_are_refused_when_no_token_is_configured(
    demo_service: SalescastService, method: str, path: str
) -> None:
    settings = make_settings(demo_service.settings.database_url, admin_token=None)
    with TestClient(create_app(settings, service=demo_service)) as client:
        response = client.request(method, path, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403
    assert "SALESCAST_ADMIN_TOKEN" in response.json()["detail"]


def test_csv_upload_with_a_two_column_key_is_stored(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = "store,item,day,units\nS1,I1,2024-01-01,3\nS1,I1,2024-01-02,4.5\n"
    response = client.post(
        "/sales",
        content=body,
        params={"product_cols": "store,item", "date_col": "day", "quantity_col": "units"},
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"rows": 2, "products": ["S1-I1"], "data_versions": {"S1-I1": 1}}
    assert client.get("/products/S1-I1/sales").json()["points"][1]["quantity"] == 4.5


def test_a_bad_row_rejects_the_upload_with_line_and_column_and_stores_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    before = client.get("/products").json()
    body = "date,product_id,quantity\n2024-01-01,new,1\n2024-01-02,new,lots\n"
    response = client.post("/sales", content=body, headers={**admin, "Content-Type": "text/csv"})
    assert response.status_code == 400
    [problem] = response.json()["detail"]["problems"]
    assert (problem["line"], problem["column"]) == (3, "quantity")
    assert client.get("/products").json() == before


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/json", b"{not json", 400),
        ("application/json", b'{"rows": 5}', 400),
        ("application/json", b"[]", 400),
        ("text/csv", b"", 400),
        ("text/csv", b"date;product_id;quantity\n2024-01-01;a;1\n", 400),
        ("text/csv", b"\x00\xff\xfe binary", 400),
        ("application/xml", b"<sales/>", 415),
    ],
)
def test_malformed_uploads_get_a_clear_4xx_and_change_nothing(
    client: TestClient, admin: dict[str, str], content_type: str, body: bytes, status: int
) -> None:
    before = client.get("/products").json()
    response = client.post("/sales", content=body, headers={**admin, "Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    assert client.get("/products").json() == before


def test_an_upload_over_the_size_limit_gets_413(demo_service: SalescastService) -> None:
    settings = demo_service.settings.model_copy(update={"max_upload_bytes": 1024})
    body = "date,product_id,quantity\n" + "2024-01-01,a,1\n" * 200
    with TestClient(create_app(settings, service=demo_service)) as client:
        response = client.post(
            "/sales",
            content=body,
            headers={"Authorization": "Bearer test-admin-token", "Content-Type": "text/csv"},
        )
    assert response.status_code == 413
    assert "1024" in response.json()["detail"]


def test_training_creates_an_active_version_and_rollback_restores_the_old_one(
    client: TestClient, admin: dict[str, str]
) -> None:
    trained = client.post(f"/products/{PRODUCT}/train", headers=admin)
    assert trained.status_code == 201
    assert (trained.json()["version"], trained.json()["active"]) == (2, True)
    assert client.get(f"/products/{PRODUCT}/forecast").json()["model_version"] == 2
    rolled = client.post(f"/products/{PRODUCT}/models/1/activate", headers=admin)
    assert rolled.status_code == 200
    versions = client.get(f"/products/{PRODUCT}/models").json()
    assert [(v["version"], v["active"]) for v in versions] == [(1, True), (2, False)]
    assert client.get(f"/products/{PRODUCT}/forecast").json()["model_version"] == 1


def test_activating_a_version_that_does_not_exist_gets_404(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(f"/products/{PRODUCT}/models/7/activate", headers=admin)
    assert response.status_code == 404
    assert client.post(f"/products/{PRODUCT}/models/0/activate", headers=admin).status_code == 422


def test_training_a_product_with_too_little_history_gets_422_naming_the_minimum(
    client: TestClient, admin: dict[str, str]
) -> None:
    client.post(
        "/sales", json=[{"date": "2024-01-01", "product_id": "tiny", "quantity": 1}], headers=admin
    )
    response = client.post("/products/tiny/train", headers=admin)
    assert response.status_code == 422
    assert "at least 60" in response.json()["detail"]


def test_background_training_job_reports_progress_until_done(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = {"product_ids": [PRODUCT, "CA_3-FOODS_3"], "force": True}  # their data is unchanged
    started = client.post("/train", json=body, headers=admin)
    assert started.status_code == 202
    job_id = started.json()["id"]
    deadline = time.monotonic() + 120
    job = started.json()
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert (job["total"], job["done"], job["failed"]) == (2, 2, 0)
    assert {(r["version"], r["outcome"]) for r in job["results"]} == {(2, "activated")}


def test_a_job_listing_an_unknown_product_is_refused_before_it_starts(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post("/train", json={"product_ids": ["nope"]}, headers=admin)
    assert response.status_code == 404
    assert client.get("/jobs/unknown").status_code == 404


def test_a_bad_json_row_is_reported_by_row_number(
    client: TestClient, admin: dict[str, str]
) -> None:
    rows = [
        {"date": "2024-01-01", "product_id": "j", "quantity": 1},
        {"date": "2024-01-02", "product_id": "j", "quantity": True},
    ]
    response = client.post("/sales", json=rows, headers=admin)
    assert response.status_code == 400
    [problem] = response.json()["detail"]["problems"]
    assert (problem["unit"], problem["line"], problem["column"]) == ("row", 2, "quantity")
