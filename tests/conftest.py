"""Fixtures shared by every test: settings over a fresh SQLite file, services, the real data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.config import Settings
from salescast.service import SalescastService

ADMIN_TOKEN = "test-admin-token"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
M5_CSV = SHARED_DATA / "m5_store_dept_daily" / "m5_store_dept_daily.csv"
STORE_ITEM_CSV = SHARED_DATA / "store_item_demand" / "train.csv"


def make_settings(database: Path, **overrides: object) -> Settings:
    """Settings that ignore the developer's environment and .env file."""
    values: dict[str, object] = {
        "database_url": f"sqlite:///{database}",
        "admin_token": ADMIN_TOKEN,
        "warmup_on_startup": False,
        "uncertainty_samples": 100,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "salescast.db")


@pytest.fixture
def service(settings: Settings) -> Iterator[SalescastService]:
    service = SalescastService(settings)
    yield service
    service.close()


@pytest.fixture(scope="session")
def trained_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the demo data with one trained version per product, built once."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    service = SalescastService(make_settings(path))
    service.load_demo_if_empty()
    service.train_products()
    service.close()
    return path


@pytest.fixture
def demo_service(tmp_path: Path, trained_demo_db: Path) -> Iterator[SalescastService]:
    """A private copy of the trained demo store."""
    path = tmp_path / "salescast.db"
    shutil.copy(trained_demo_db, path)
    service = SalescastService(make_settings(path))
    yield service
    service.close()


@pytest.fixture
def client(demo_service: SalescastService) -> Iterator[TestClient]:
    with TestClient(create_app(demo_service.settings, service=demo_service)) as test_client:
        yield test_client


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def require_shared_data(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data file missing: {path} (expected ../shared/data beside the checkout)")
    return path
