"""The forecast as PNG, SVG and CSV: negotiated, drawn from its numbers, cached, revalidated."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from PIL import Image

PRODUCT = "CA_1-FOODS_3"
FORECAST = f"/products/{PRODUCT}/forecast"
QUERY = {"horizon": 7, "interval": 0.9}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8"
SVG = "{http://www.w3.org/2000/svg}"
DC = "{http://purl.org/dc/elements/1.1/}"


def get(client: TestClient, accept: str | None = None, **params: object) -> object:
    headers = {} if accept is None else {"Accept": accept}
    return client.get(FORECAST, params={**QUERY, **params}, headers=headers)


def test_json_stays_the_default_byte_for_byte_whatever_a_browser_or_curl_accepts(
    client: TestClient,
) -> None:
    plain = client.get(FORECAST, params=QUERY)
    assert plain.headers["content-type"] == "application/json"
    assert plain.headers["vary"] == "Accept"
    for accept, params in [
        ("application/json", {}),
        ("*/*", {}),
        (BROWSER_ACCEPT, {}),
        ("image/png;q=0.5, application/json", {}),
        ("image/png", {"format": "json"}),  # the query wins over the header
    ]:
        response = client.get(FORECAST, params={**QUERY, **params}, headers={"Accept": accept})
        assert response.status_code == 200, accept
        assert response.content == plain.content, accept
        assert response.headers["etag"] == plain.headers["etag"]


def test_png_decodes_at_a_sane_size_and_is_cached_after_the_first_call(
    client: TestClient,
) -> None:
    first = client.get(FORECAST, params=QUERY, headers={"Accept": "image/png"})
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/png"
    assert first.headers["x-cache"] == "MISS"
    assert first.headers["vary"] == "Accept"
    image = Image.open(io.BytesIO(first.content))
    image.verify()
    assert image.format == "PNG"
    assert image.size == (1000, 450)

    second = client.get(FORECAST, params={**QUERY, "format": "png"})
    assert second.headers["x-cache"] == "HIT-L1"
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]


def test_svg_carries_the_forecasts_numbers_and_draws_one_vertex_per_day(
    client: TestClient,
) -> None:
    forecast = client.get(FORECAST, params=QUERY).json()
    response = client.get(FORECAST, params={**QUERY, "format": "svg"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    root = ElementTree.fromstring(response.content)
    description = root.find(f".//{DC}description")
    assert description is not None
    assert json.loads(description.text or "") == forecast["points"]
    line = root.find(f".//{SVG}g[@id='forecast-line']/{SVG}path")
    assert line is not None
    vertices = line.attrib["d"].replace("M", "L").split("L")
    assert len([v for v in vertices if v.strip()]) == QUERY["horizon"]
    texts = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert f"{PRODUCT}: model v{forecast['model_version']}" in texts
    assert "90% interval" in texts


def test_csv_has_the_long_shape_with_exactly_the_jsons_numbers(client: TestClient) -> None:
    forecast = client.get(FORECAST, params=QUERY).json()
    response = client.get(FORECAST, params=QUERY, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["product_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model_version"]
    expected = [
        [PRODUCT, p["ds"], repr(p["yhat"]), repr(p["yhat_lower"]), repr(p["yhat_upper"]), "1"]
        for p in forecast["points"]
    ]
    assert rows[1:] == expected
    assert forecast["model_version"] == 1


def test_each_representation_revalidates_with_its_own_etag(client: TestClient) -> None:
    etags = {fmt: get(client, format=fmt).headers["etag"] for fmt in ("json", "png", "svg", "csv")}
    assert len(set(etags.values())) == 4
    for fmt, etag in etags.items():
        for other in etags:
            response = client.get(
                FORECAST, params={**QUERY, "format": other}, headers={"If-None-Match": etag}
            )
            if other == fmt:
                assert (response.status_code, response.content) == (304, b""), (fmt, other)
                assert response.headers["etag"] == etag
                assert response.headers["vary"] == "Accept"
            else:
                assert response.status_code == 200, (fmt, other)


def test_an_ingest_changes_the_charts_etag_but_not_the_csvs(
    client: TestClient, admin: dict[str, str]
) -> None:
    png, csv_etag = get(client, format="png"), get(client, format="csv").headers["etag"]
    last = next(p for p in client.get("/products").json() if p["product_id"] == PRODUCT)
    day = (dt.date.fromisoformat(last["last_date"]) + dt.timedelta(days=1)).isoformat()
    row = {"date": day, "product_id": PRODUCT, "quantity": 4321}
    assert client.post("/sales", json=[row], headers=admin).status_code == 201

    stale = client.get(
        FORECAST, params={**QUERY, "format": "png"}, headers={"If-None-Match": png.headers["etag"]}
    )
    assert stale.status_code == 200  # the history tail now ends with the new day
    assert stale.headers["etag"] != png.headers["etag"]
    assert stale.headers["x-cache"] == "MISS"
    assert stale.content != png.content
    same = client.get(
        FORECAST, params={**QUERY, "format": "csv"}, headers={"If-None-Match": csv_etag}
    )
    assert same.status_code == 304  # the model, and so the forecast, did not change


@pytest.mark.parametrize("fmt", ["bmp", "", "PNG"])
def test_an_unknown_format_gets_422_naming_the_parameter(client: TestClient, fmt: str) -> None:
    response = get(client, format=fmt)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "format"]


def test_an_accept_header_naming_no_offered_type_gets_406_listing_them(
    client: TestClient,
) -> None:
    for accept in ("text/html", "image/gif, application/xml", "image/png;q=0, */*;q=0"):
        response = get(client, accept=accept)
        assert response.status_code == 406, accept
        detail = response.json()["detail"]
        assert "image/png" in detail
        assert "text/csv" in detail
        assert "format=" in detail


def test_a_picture_of_an_unknown_product_gets_a_json_404(client: TestClient) -> None:
    response = client.get("/products/nope/forecast", params={"format": "png"})
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_revalidating_a_csv_or_a_chart_computes_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    etags = {fmt: get(client, format=fmt).headers["etag"] for fmt in ("csv", "svg")}
    assert client.delete("/cache/clear", headers=admin).status_code == 200

    def computations() -> dict[str, int]:
        namespaces = client.get("/cache/stats").json()["namespaces"]
        return {name: ns["computations"] for name, ns in namespaces.items()}

    before = computations()
    for fmt, etag in etags.items():
        response = client.get(
            FORECAST, params={**QUERY, "format": fmt}, headers={"If-None-Match": etag}
        )
        assert response.status_code == 304, fmt
    assert computations() == before


def test_matplotlib_is_imported_only_when_a_chart_is_drawn() -> None:
    # It costs a server or CLI start a good part of a second.
    code = (
        "import sys, salescast.api.app, salescast.cli.main, salescast.service; "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"
