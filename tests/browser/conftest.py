"""A real `salescast serve` on a copy of the trained demo store, and Debian's chromium driving it.

Chromium is the Debian package (`make chromium` installs it); Playwright for
Python only drives it (`executable_path`), it never downloads a browser. Each
test's page records every console error, uncaught exception, failed request,
answer of 400 or more and request to another origin, and the test fails on
any of them after it ran. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

from tests.conftest import ADMIN_TOKEN, sqlite_url
from tests.support.uvicorn_server import UvicornServer

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def server(
    trained_demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UvicornServer]:
    path = tmp_path_factory.mktemp("browser") / "demo.db"
    shutil.copy(trained_demo_db, path)
    env = {
        "SALESCAST_DATABASE_URL": sqlite_url(path),
        "SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN,
        "SALESCAST_WARMUP_ON_STARTUP": "false",
        "SALESCAST_UNCERTAINTY_SAMPLES": "100",
    }
    with UvicornServer(env) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: UvicornServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


# Module scope, not session: Playwright's sync API keeps its event loop running
# in this thread while it is open, and an asyncio test that xdist schedules on
# the same worker afterwards would find "another loop is running".
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


class PageProblems:
    """What went wrong in the browser while a test ran; `check` fails the test on any."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.problems: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on("requestfailed", self._failed)
        page.on("request", self._request)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text} ({message.location})")

    def _failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _request(self, request: Request) -> None:
        if not (request.url.startswith(self.origin + "/") or request.url.startswith("data:")):
            self.problems.append(f"request to another origin: {request.url}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status} for {response.url}")

    def check(self) -> None:
        assert self.problems == []


@pytest.fixture
def page(browser: Browser, server: UvicornServer) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) at a laptop's width; fails the test on any problem."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url)
    tab = context.new_page()
    problems = PageProblems(server.url)
    problems.watch(tab)
    yield tab
    context.close()
    problems.check()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
