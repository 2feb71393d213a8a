"""Model management over HTTP (the real ASGI app, both stores): skipped retrains, pins, deletion.

The `client` fixture serves a private copy of the trained demo store (five
real M5 series, version 1 active for each).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.demo_uploads import last_days, zeroed_last_days

P1, P2 = "CA_1-HOBBIES_1", "CA_3-FOODS_3"
CSV_UPLOAD = {"product_cols": "store_id,dept_id", "quantity_col": "sales", "mode": "replace"}


def finished_job(client: TestClient, started: Any) -> dict[str, Any]:
    assert started.status_code == 202, started.text
    job = started.json()
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/jobs/{job['id']}").json()
    assert job["status"] == "succeeded", job
    return dict(job)


def upload(client: TestClient, admin: dict[str, str], body: bytes) -> None:
    headers = {**admin, "Content-Type": "text/csv"}
    answer = client.post("/sales", content=body, params=CSV_UPLOAD, headers=headers)
    assert answer.status_code == 201, answer.text


def listing(client: TestClient, product_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"/products/{product_id}/models")
    assert answer.status_code == 200
    return list(answer.json())


def test_post_train_skips_unchanged_products_and_reports_each_with_the_reason(
    client: TestClient, admin: dict[str, str]
) -> None:
    upload(client, admin, last_days(P1, 7))
    job = finished_job(client, client.post("/train", headers=admin))
    outcomes = {r["product_id"]: (r["outcome"], r["version"]) for r in job["results"]}
    assert outcomes.pop(P1) == ("activated", 2)
    assert set(outcomes.values()) == {("skipped", None)}
    assert (job["total"], job["done"], job["failed"], job["skipped"]) == (5, 5, 0, 4)
    [skipped] = [r for r in job["results"] if r["product_id"] == P2]
    assert skipped["reason"].startswith("data unchanged since version 1 was trained")


@pytest.mark.parametrize(
    ("params", "body"), [({"force": "true"}, None), ({}, {"force": True})], ids=["query", "body"]
)
def test_post_train_with_force_retrains_unchanged_products(
    client: TestClient,
    admin: dict[str, str],
    params: dict[str, str],
    body: dict[str, Any] | None,
) -> None:
    started = client.post("/train", params=params, json=body, headers=admin)
    job = finished_job(client, started)
    assert {(r["outcome"], r["version"]) for r in job["results"]} == {("activated", 2)}
    assert job["skipped"] == 0


def test_a_hand_activation_pins_and_training_reports_why_it_did_not_activate(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.post(f"/products/{P1}/train", headers=admin).json()["active"] is True
    rolled = client.post(f"/products/{P1}/models/1/activate", headers=admin)
    assert (rolled.json()["active"], rolled.json()["pinned"]) == (True, True)

    trained = client.post(f"/products/{P1}/train", headers=admin)

    assert trained.status_code == 201
    assert (trained.json()["version"], trained.json()["active"]) == (3, False)
    assert "version 1 is pinned" in trained.json()["not_activated_reason"]
    rows = [(m["version"], m["active"], m["pinned"]) for m in listing(client, P1)]
    assert rows == [(1, True, True), (2, False, False), (3, False, False)]
    assert [m["not_activated_reason"] is None for m in listing(client, P1)] == [True, True, False]
    assert client.get(f"/products/{P1}/forecast?horizon=7").json()["model_version"] == 1


def test_unpin_lets_the_next_training_activate(client: TestClient, admin: dict[str, str]) -> None:
    client.post(f"/products/{P1}/models/1/activate", headers=admin)
    unpinned = client.post(f"/products/{P1}/models/unpin", headers=admin)
    assert unpinned.status_code == 200
    assert (unpinned.json()["version"], unpinned.json()["pinned"]) == (1, False)
    trained = client.post(f"/products/{P1}/train", headers=admin).json()
    assert (trained["version"], trained["active"]) == (2, True)


def test_unpin_of_an_unknown_product_is_404_and_of_an_untrained_one_409(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.post("/products/nope/models/unpin", headers=admin).status_code == 404
    rows = [{"date": "2024-01-01", "product_id": "fresh", "quantity": 1}]
    assert client.post("/sales", json=rows, headers=admin).status_code == 201
    answer = client.post("/products/fresh/models/unpin", headers=admin)
    assert answer.status_code == 409
    assert "train" in answer.json()["detail"]


def test_a_worse_backtest_is_stored_with_its_reason_and_the_old_version_serves(
    client: TestClient, admin: dict[str, str]
) -> None:
    upload(client, admin, zeroed_last_days(P2, 28))
    trained = client.post(f"/products/{P2}/train", headers=admin).json()
    assert (trained["version"], trained["active"]) == (2, False)
    assert "worse than active version 1's" in trained["not_activated_reason"]
    assert listing(client, P2)[1]["not_activated_reason"] == trained["not_activated_reason"]
    assert client.get(f"/products/{P2}/forecast?horizon=7").json()["model_version"] == 1


def test_delete_removes_an_inactive_version_and_the_next_number_is_new(
    client: TestClient, admin: dict[str, str]
) -> None:
    client.post(f"/products/{P1}/train", headers=admin)  # version 2, active
    client.get(f"/products/{P1}/forecast?horizon=7")
    answer = client.delete(f"/products/{P1}/models/1", headers=admin)
    assert answer.status_code == 204
    assert answer.content == b""
    assert [m["version"] for m in listing(client, P1)] == [2]
    assert client.get(f"/products/{P1}/forecast?horizon=7").json()["model_version"] == 2
    assert client.delete(f"/products/{P1}/models/1", headers=admin).status_code == 404


def test_deleting_the_active_version_is_409_and_keeps_it(
    client: TestClient, admin: dict[str, str]
) -> None:
    answer = client.delete(f"/products/{P1}/models/1", headers=admin)
    assert answer.status_code == 409
    assert "active version" in answer.json()["detail"]
    assert [(m["version"], m["active"]) for m in listing(client, P1)] == [(1, True)]
    assert client.get(f"/products/{P1}/forecast?horizon=7").status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/products/{P1}/models/9", 404),
        ("/products/nope/models/1", 404),
        (f"/products/{P1}/models/0", 422),
        (f"/products/{P1}/models/-1", 422),
        (f"/products/{P1}/models/{2**40}", 422),
        (f"/products/{P1}/models/latest", 422),
    ],
)
def test_deleting_what_does_not_exist_is_a_clear_4xx_and_deletes_nothing(
    client: TestClient, admin: dict[str, str], path: str, status: int
) -> None:
    before = listing(client, P1)
    answer = client.delete(path, headers=admin)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]
    assert listing(client, P1) == before


def test_openapi_lists_the_model_management_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"401", "403", "404", "409"} <= set(
        paths["/products/{product_id}/models/{version}"]["delete"]["responses"]
    )
    assert {"404", "409"} <= set(paths["/products/{product_id}/models/unpin"]["post"]["responses"])
    assert "force" in {p["name"] for p in paths["/train"]["post"]["parameters"]}
