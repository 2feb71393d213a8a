"""`/docs` and `/redoc` work without internet: every asset from salescast, real examples."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from salescast.api import schemas
from tests.conftest import sqlite_url
from tests.support.uvicorn_server import UvicornServer

PAGES = ("/docs", "/redoc")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
# The main answers; each must carry an example that is a valid instance of it.
EXAMPLED_MODELS: list[type[BaseModel]] = [
    schemas.ForecastResponse,
    schemas.ProductModel,
    schemas.SalesHistoryResponse,
    schemas.ModelVersionModel,
    schemas.TrainingSummaryModel,
    schemas.IngestResponse,
    schemas.JobModel,
    schemas.CacheStatusResponse,
    schemas.CacheStatsResponse,
    schemas.ErrorResponse,
]


class AssetLinks(HTMLParser):
    """The URLs a page's `<script src>` and `<link href>` load."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def asset_urls(html: str) -> list[str]:
    parser = AssetLinks()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", PAGES)
def test_the_page_names_no_external_url(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert re.findall(r"(?:https?:)?//[\w.-]+", response.text) == []
    assert "fonts.googleapis" not in response.text


@pytest.mark.parametrize("page", PAGES)
def test_every_asset_the_page_loads_is_served_with_its_content_type(
    client: TestClient, page: str
) -> None:
    urls = asset_urls(client.get(page).text)
    assert len(urls) >= 2  # the script and the favicon at least
    assert any(url.endswith(".js") for url in urls)
    for url in urls:
        assert url.startswith("/static/"), url
        response = client.get(url)
        assert response.status_code == 200, url
        expected = CONTENT_TYPES[Path(url).suffix]
        assert response.headers["content-type"].startswith(expected), url
        assert len(response.content) > 100, url


def test_the_vendored_assets_load_nothing_from_a_cdn_themselves(client: TestClient) -> None:
    css = client.get("/static/swagger-ui/swagger-ui.css").text
    # url(...) in the stylesheet: inline data only, no font or image fetched from elsewhere
    assert [u for u in re.findall(r"url\(([^)]*)\)", css) if "data:" not in u] == []


def test_openapi_examples_are_real_answers_of_each_main_model(client: TestClient) -> None:
    components = client.get("/openapi.json").json()["components"]["schemas"]
    for model in EXAMPLED_MODELS:
        [example] = model.model_json_schema()["examples"]
        model.model_validate(example)  # a valid answer, not "string" and 0
        # FastAPI writes its document without nulls (exclude_none), examples too.
        assert components[model.__name__]["examples"] == [without_nulls(example)]
    forecast = components["ForecastResponse"]["examples"][0]
    assert forecast["product_id"] == "CA_1-FOODS_3"
    assert all(p["yhat_lower"] <= p["yhat"] <= p["yhat_upper"] for p in forecast["points"])


def test_the_forecast_route_documents_its_other_formats(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/products/{product_id}/forecast"]
    content = operation["get"]["responses"]["200"]["content"]
    assert {"application/json", "image/png", "image/svg+xml", "text/csv"} <= set(content)
    assert "406" in operation["get"]["responses"]


# --- a real browser (Debian's chromium), when installed


@pytest.fixture(scope="module")
def docs_server(trained_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> UvicornServer:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    db = tmp_path_factory.mktemp("docs") / "demo.db"
    shutil.copy(trained_demo_db, db)
    server = UvicornServer(
        {"SALESCAST_DATABASE_URL": sqlite_url(db), "SALESCAST_WARMUP_ON_STARTUP": "false"}
    )
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


def render(url: str, profile: Path) -> tuple[str, str]:
    """The DOM after scripts ran, and chromium's log, with every host but loopback unresolvable."""
    args = [
        "chromium", "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
        "--disable-extensions", f"--user-data-dir={profile}",
        # Anything not served by salescast fails (and would be missing from the DOM).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
        "--dump-dom", url,
    ]  # fmt: skip
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


@pytest.mark.parametrize(
    ("page", "elements"),
    [
        ("/docs", ['class="swagger-ui"', "opblock-tag", "/products/{product_id}/forecast"]),
        ("/redoc", ["redoc-wrap", "menu-content", "api-content"]),
    ],
)
def test_chromium_renders_the_page_offline_without_console_errors(
    docs_server: UvicornServer, tmp_path: Path, page: str, elements: list[str]
) -> None:
    dom, log = render(f"{docs_server.url}{page}", tmp_path / "profile")
    for element in elements:
        assert element in dom, (element, dom[:2000])
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == []
    requests = re.findall(r'"GET (\S+) HTTP/1.1" (\d+)', docs_server.log_text())
    asked = {path for path, _ in requests}
    assert {page, "/openapi.json"} <= asked
    assert [r for r in requests if r[1] not in ("200", "304")] == []
