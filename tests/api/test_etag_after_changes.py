"""An ETag names one model version: after a retrain or an activation the old one gets a body."""

from __future__ import annotations

from fastapi.testclient import TestClient

PRODUCT = "CA_1-FOODS_3"
FORECAST = f"/products/{PRODUCT}/forecast"


def current_etag(client: TestClient, expected_version: int) -> str:
    response = client.get(FORECAST)
    assert response.status_code == 200
    assert response.json()["model_version"] == expected_version
    return response.headers["etag"]


def assert_revalidation_gets_the_version(client: TestClient, old_etag: str, version: int) -> None:
    response = client.get(FORECAST, headers={"If-None-Match": old_etag})
    assert response.status_code == 200, "an ETag of a superseded version was answered 304"
    assert response.json()["model_version"] == version
    # The new ETag is current in turn.
    again = client.get(FORECAST, headers={"If-None-Match": response.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


def test_an_old_etag_gets_200_after_a_retrain(client: TestClient, admin: dict[str, str]) -> None:
    old_etag = current_etag(client, expected_version=1)
    assert client.get(FORECAST, headers={"If-None-Match": old_etag}).status_code == 304

    trained = client.post(f"/products/{PRODUCT}/train", headers=admin)
    assert trained.status_code == 201
    assert trained.json()["version"] == 2

    assert_revalidation_gets_the_version(client, old_etag, version=2)


def test_an_old_etag_gets_200_after_an_activation(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.post(f"/products/{PRODUCT}/train", headers=admin).status_code == 201
    etag_of_v2 = current_etag(client, expected_version=2)

    rolled_back = client.post(f"/products/{PRODUCT}/models/1/activate", headers=admin)
    assert rolled_back.status_code == 200
    assert_revalidation_gets_the_version(client, etag_of_v2, version=1)

    etag_of_v1 = current_etag(client, expected_version=1)
    promoted = client.post(f"/products/{PRODUCT}/models/2/activate", headers=admin)
    assert promoted.status_code == 200
    assert_revalidation_gets_the_version(client, etag_of_v1, version=2)
