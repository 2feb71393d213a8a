"""The dashboard in Debian's chromium against a real server: each page, the chart's numbers,
a rollback with the admin token, a phone-width screen."""

from __future__ import annotations

import re
import time

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PageProblems, screenshot
from tests.conftest import ADMIN_TOKEN
from tests.support.uvicorn_server import UvicornServer

PRODUCT = "CA_1-FOODS_3"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def row_ids(page: Page) -> list[str]:
    return page.locator("table.products tbody th a").all_inner_texts()


def test_products_page_lists_searches_and_sorts_like_the_api(page: Page, api: httpx.Client) -> None:
    page.goto("/")
    expect(page).to_have_title(re.compile("Products"))
    assert page.locator("html").get_attribute("lang") == "en"
    listed = api.get("/products").json()
    assert row_ids(page) == [p["product_id"] for p in listed]
    expect(page.locator("#count")).to_have_text(
        f"Products 1\N{EN DASH}{len(listed)} of {len(listed)}"
    )
    screenshot(page, "products")

    page.get_by_label("Search ids").fill("foods")
    page.get_by_label("Sort by").select_option("-mase")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"q=foods"))
    expected = api.get("/products", params={"q": "foods", "sort": "-mase"}).json()
    assert row_ids(page) == [p["product_id"] for p in expected]
    assert len(expected) >= 2
    for product in expected:
        row = page.locator("table.products tbody tr", has_text=product["product_id"])
        expect(row.locator("td").nth(4)).to_contain_text(f"{product['mase']:.3f}")
    screenshot(page, "products-search")

    page.goto("/?limit=2&sort=-sales_days")
    assert len(row_ids(page)) == 2
    page.get_by_role("link", name="Next →").click()
    page.wait_for_url(re.compile(r"offset=2"))
    following = api.get("/products", params={"limit": 2, "offset": 2, "sort": "-sales_days"})
    assert row_ids(page) == [p["product_id"] for p in following.json()]


def test_bad_listing_values_are_shown_on_the_page(browser: Browser, server: UvicornServer) -> None:
    context = browser.new_context(base_url=server.url)
    tab = context.new_page()
    problems = PageProblems(server.url)
    problems.watch(tab)
    response = tab.goto("/?limit=5000")
    assert response is not None
    assert response.status == 422
    expect(tab.get_by_role("alert")).to_contain_text("limit: Input should be less than or equal to")
    context.close()
    # The page's own 422 is the one expected answer of 400 or more (and its console line).
    assert all("limit=5000" in p for p in problems.problems), problems.problems


def test_product_chart_is_drawn_from_the_forecast_the_api_answers(
    page: Page, api: httpx.Client
) -> None:
    page.goto(f"/ui/products/{PRODUCT}")
    page.get_by_label("Horizon (days)").fill("14")
    page.get_by_label("Interval width").fill("0.9")
    page.get_by_role("button", name="Draw").click()
    page.wait_for_url(re.compile(r"horizon=14"))
    forecast = api.get(
        f"/products/{PRODUCT}/forecast", params={"horizon": 14, "interval": 0.9}
    ).json()
    points = page.locator("svg.chart .forecast-points circle")
    drawn = [
        {
            "ds": points.nth(i).get_attribute("data-ds"),
            "yhat": float(points.nth(i).get_attribute("data-yhat") or "nan"),
            "yhat_lower": float(points.nth(i).get_attribute("data-yhat-lower") or "nan"),
            "yhat_upper": float(points.nth(i).get_attribute("data-yhat-upper") or "nan"),
        }
        for i in range(points.count())
    ]
    assert drawn == forecast["points"]
    expect(page.locator("svg.chart polygon.band")).to_have_count(1)
    expect(page.locator("svg.chart polyline.history")).to_have_count(1)
    versions = api.get(f"/products/{PRODUCT}/models").json()
    for version in versions:
        row = page.locator(f'table.versions tr[data-version="{version["version"]}"]')
        expect(row.locator("td").nth(3)).to_have_text(f"{version['metrics']['mase']:.3f}")
        expect(row.locator("td").nth(4)).to_have_text(
            f"{version['metrics']['mase_seasonal_naive']:.3f}"
        )
    screenshot(page, "product")


def test_rollback_asks_the_token_once_and_the_api_then_reports_that_version(
    page: Page, api: httpx.Client
) -> None:
    product = "CA_1-HOBBIES_1"
    trained = api.post(f"/products/{product}/train", headers=ADMIN)
    assert trained.status_code == 201, trained.text

    def active() -> int:
        return next(
            v["version"] for v in api.get(f"/products/{product}/models").json() if v["active"]
        )

    first = active()  # version 2 when training activated it, else still 1
    other = 1 if first == trained.json()["version"] else trained.json()["version"]
    page.goto(f"/ui/products/{product}")
    page.get_by_role("button", name=re.compile(f"version {other}$")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    screenshot(page, "token-dialog")
    dialog.get_by_label("Token").fill(ADMIN_TOKEN)
    with page.expect_navigation():
        dialog.get_by_role("button", name="Use token").click()
    assert active() == other
    expect(page.locator(f'tr[data-version="{other}"]')).to_contain_text("active")
    screenshot(page, "after-rollback")

    # The token is kept for the tab: the next activation asks nothing.
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile(f"version {first}$")).click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert active() == first


def test_cache_page_shows_the_backend_breaker_and_the_apis_counts(
    page: Page, api: httpx.Client
) -> None:
    api.get(f"/products/{PRODUCT}/forecast")  # some lookups to count
    api.get(f"/products/{PRODUCT}/forecast")
    page.goto("/ui/cache")
    status = api.get("/cache/status").json()
    stats = api.get("/cache/stats").json()
    expect(page.locator("#backend")).to_contain_text(status["backend"])
    expect(page.locator("#l1")).to_contain_text(f"{status['l1_entries']} entries")
    assert stats["namespaces"], "the forecasts above were counted"
    for name, counts in stats["namespaces"].items():
        row = page.locator(f'tr[data-namespace="{name}"] td')
        expect(row.nth(0)).to_have_text(str(counts["l1"]["hits"]))
        expect(row.nth(3)).to_have_text(f"{counts['hit_rate'] * 100:.1f} %")
    expect(page.locator("#warmup")).to_contain_text(status["warmup"]["state"])
    screenshot(page, "cache")


def test_jobs_page_shows_a_training_jobs_progress(page: Page, api: httpx.Client) -> None:
    job = api.post("/train", headers=ADMIN).json()  # unchanged products: all skipped, no fit
    deadline = time.monotonic() + 120
    while api.get(f"/jobs/{job['id']}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the job did not finish"  # safety bound only
        time.sleep(0.2)
    finished = api.get(f"/jobs/{job['id']}").json()
    page.goto("/ui/jobs")
    row = page.locator(f'tr[data-job="{job["id"]}"]')
    expect(row).to_contain_text(finished["status"])
    expect(row).to_contain_text(f"{finished['done']} of {finished['total']}")
    expect(row.locator("td").nth(3)).to_have_text(str(finished["skipped"]))
    screenshot(page, "jobs")


def test_pages_fit_a_phone_width_screen(browser: Browser, server: UvicornServer) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, base_url=server.url
    )
    tab = context.new_page()
    problems = PageProblems(server.url)
    problems.watch(tab)
    for path, name in (("/", "phone-products"), (f"/ui/products/{PRODUCT}", "phone-product")):
        tab.goto(path)
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px"
        screenshot(tab, name)
    context.close()
    problems.check()


def test_every_page_only_refers_to_this_server(api: httpx.Client) -> None:
    for path in ("/", f"/ui/products/{PRODUCT}", "/ui/cache", "/ui/jobs", "/ui/nope"):
        response = api.get(path)
        if path == "/ui/nope":
            assert response.status_code == 404
            continue
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert re.findall(r"(?:src|href)=\"(?!/|#)[^\"]*\"", response.text) == []
        assert "http://" not in response.text
        assert "https://" not in response.text
