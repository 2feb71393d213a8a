"""GET /products pages, filters and sorts through the real app; GET /products/{id}; bad values."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.service import SalescastService
from tests.store.test_product_listing import ingest_products

PRODUCT = "CA_1-FOODS_3"


def test_the_listing_is_a_json_array_with_the_total_and_the_next_page_in_headers(
    client: TestClient,
) -> None:
    first = client.get("/products", params={"limit": 2, "sort": "-sales_days"})
    assert first.status_code == 200
    assert first.headers["x-total-count"] == "5"
    assert len(first.json()) == 2
    link = first.headers["link"]
    assert link.startswith("<http")
    assert link.endswith('>; rel="next"')
    following = link[1 : link.index(">")]
    for kept in ("offset=2", "sort=-sales_days", "limit=2"):
        assert kept in following

    seen = list(first.json())
    url: str | None = following
    while url is not None:
        page = client.get(url)
        seen += page.json()
        link = page.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    everything = client.get("/products", params={"sort": "-sales_days"}).json()
    assert seen == everything
    assert "link" not in client.get("/products").headers
    days = [p["sales_days"] for p in everything]
    assert days == sorted(days, reverse=True)


def test_each_listed_product_carries_its_active_versions_backtest_scores(
    client: TestClient, demo_service: SalescastService
) -> None:
    listed = {p["product_id"]: p for p in client.get("/products").json()}
    for product_id, product in listed.items():
        [version] = demo_service.list_models(product_id)
        assert product["mase"] == version.metrics["mase"]
        assert product["mase_seasonal_naive"] == version.metrics["mase_seasonal_naive"]
    worse = client.get("/products", params={"worse_than_naive": "true"}).json()
    assert [p["product_id"] for p in worse] == sorted(
        p for p, v in listed.items() if v["mase"] > v["mase_seasonal_naive"]
    )
    assert client.get("/products", params={"has_model": "false"}).json() == []
    found = client.get("/products", params={"q": "foods"}).json()
    assert [p["product_id"] for p in found] == sorted(p for p in listed if "FOODS" in p)


def test_one_product_is_answered_by_its_own_path_and_an_unknown_id_is_404(
    client: TestClient,
) -> None:
    one = client.get(f"/products/{PRODUCT}")
    assert one.status_code == 200
    assert one.json() == next(
        p for p in client.get("/products").json() if p["product_id"] == PRODUCT
    )
    missing = client.get("/products/no-such-product")
    assert missing.status_code == 404
    assert "no-such-product" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**63}, "offset"),
        ({"q": "a\x00b"}, "q"),
        ({"sort": "price"}, "sort"),
        ({"sort": "--id"}, "sort"),
        ({"has_model": "maybe"}, "has_model"),
        ({"worse_than_naive": "2"}, "worse_than_naive"),
        ({"has_modle": "true"}, "has_modle"),
    ],
)
def test_bad_listing_parameters_answer_422_naming_the_parameter(
    client: TestClient, params: dict[str, object], field: str
) -> None:
    response = client.get("/products", params=params)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert error["msg"]


def test_the_api_and_the_dashboard_answer_a_page_of_five_thousand_products(
    service: SalescastService,
) -> None:
    names = [f"S{n:05d}" for n in range(5000)]
    ingest_products(service, {name: 1 + n % 5 for n, name in enumerate(names)})
    with TestClient(create_app(service.settings, service=service)) as client:
        started = time.perf_counter()
        response = client.get("/products", params={"sort": "-sales_days", "offset": 1000})
        page = client.get("/", params={"sort": "-sales_days", "offset": 1000})
        elapsed = time.perf_counter() - started
    assert response.headers["x-total-count"] == "5000"
    expected = sorted(names, key=lambda name: (-(1 + names.index(name) % 5), name))[1000:1100]
    assert [p["product_id"] for p in response.json()] == expected
    assert page.status_code == 200
    assert "Products 1001\N{EN DASH}1100 of 5000" in page.text
    assert page.text.count('<th scope="row"><a href="/ui/products/') == 100
    assert elapsed < 10.0, f"two pages took {elapsed:.2f} s"  # a generous safety bound only
