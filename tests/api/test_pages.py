"""The dashboard's pages through the real app, without a browser: answers, errors, route order."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.routing import Mount

from salescast.api.pages import router as pages_router
from salescast.api.routes import forecasts, products

PRODUCT = "CA_1-FOODS_3"


def test_pages_come_after_every_api_route_and_the_forecast_route_stays_first(
    client: TestClient,
) -> None:
    routes = client.app.router.routes  # type: ignore[attr-defined]
    served = routes.index(forecasts.SERVED_ROUTE)
    included = [getattr(route, "original_router", None) for route in routes]
    assert served < included.index(products.router)
    assert included.index(pages_router) == len(routes) - 2  # then only the static files
    assert isinstance(routes[-1], Mount)
    assert routes[-1].path == "/ui/static"


def test_an_unknown_product_page_is_a_404_page_naming_it(client: TestClient) -> None:
    response = client.get("/ui/products/no-such-product")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "unknown product &#39;no-such-product&#39;" in response.text


def test_a_bad_horizon_is_explained_on_the_page_and_the_default_is_drawn(
    client: TestClient,
) -> None:
    response = client.get(f"/ui/products/{PRODUCT}", params={"horizon": 0, "interval": "wide"})
    assert response.status_code == 422
    assert "horizon: Input should be greater than or equal to 1" in response.text
    assert "interval: Input should be a valid number" in response.text
    assert response.text.count('<circle class="point"') == 30  # the default horizon


def test_a_product_without_a_model_shows_its_history_and_says_why_there_is_no_forecast(
    client: TestClient, admin: dict[str, str]
) -> None:
    rows = "".join(f"2024-01-{d:02d},fresh,{d}\n" for d in range(1, 11))
    upload = client.post(
        "/sales",
        content="date,product_id,quantity\n" + rows,
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert upload.status_code == 201, upload.text
    page = client.get("/ui/products/fresh")
    assert page.status_code == 200
    assert "product &#39;fresh&#39; has no trained model; train it first" in page.text
    assert '<polyline class="history"' in page.text
    assert '<circle class="point"' not in page.text
    listed = client.get("/", params={"has_model": "false"})
    assert ">fresh</a>" in listed.text


def test_empty_form_fields_mean_any_and_the_listing_matches_the_api(client: TestClient) -> None:
    page = client.get("/", params={"q": "", "has_model": "", "sort": "-mase", "limit": 100})
    assert page.status_code == 200
    api = client.get("/products", params={"sort": "-mase"}).json()
    positions = [page.text.index(f">{p['product_id']}</a>") for p in api]
    assert positions == sorted(positions)
