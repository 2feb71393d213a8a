"""Fixtures shared by every test: stores of each kind (SQLite, PostgreSQL), services, real data.

A test that asks for `database_url`, `demo_database_url` or a fixture built on
them (`settings`, `service`, `demo_service`, `client`) runs twice: on a SQLite
file (`[sqlite]`) and on a database of a PostgreSQL server the fixtures start
(`[postgresql]`, marked `postgresql`; `-m "not postgresql"` deselects those).
The server starts with the first PostgreSQL test and serves the whole session.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.config import Settings
from salescast.service import SalescastService
from tests.support.postgres_server import PostgresServer

# Redis Cluster, Sentinel and TLS servers, started on first use (tests/support/).
pytest_plugins = ["tests.support.topology_fixtures"]

ADMIN_TOKEN = "test-admin-token"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
M5_CSV = SHARED_DATA / "m5_store_dept_daily" / "m5_store_dept_daily.csv"
STORE_ITEM_CSV = SHARED_DATA / "store_item_demand" / "train.csv"
STORE_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
DEMO_TEMPLATE = "demo_template"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgresql: runs on a PostgreSQL server the fixtures start (the [postgresql] variants)",
    )


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_settings(database: str | Path, **overrides: object) -> Settings:
    """Settings over `database` (a URL, or a SQLite file's path) that ignore the developer's
    environment and .env file."""
    values: dict[str, object] = {
        "database_url": sqlite_url(database) if isinstance(database, Path) else database,
        "admin_token": ADMIN_TOKEN,
        "warmup_on_startup": False,
        "uncertainty_samples": 100,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def build_trained_demo(database_url: str) -> None:
    """Load the demo data into the empty store at `database_url` and train every product once."""
    service = SalescastService(make_settings(database_url))
    try:
        service.load_demo_if_empty()
        service.train_products()
    finally:
        service.close()


def unique_database_name() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; each test gets its own database on it."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty store of `store_kind`: a new SQLite file or a new PostgreSQL database."""
    if store_kind == "sqlite":
        yield sqlite_url(tmp_path / "salescast.db")
        return
    # Asked for here, not as a parameter, so a run without PostgreSQL tests never starts one.
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = unique_database_name()
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture(scope="session")
def trained_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding the demo data with one trained version per product, built once."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    build_trained_demo(sqlite_url(path))
    return path


@pytest.fixture(scope="session")
def postgres_demo_template(postgres_server: PostgresServer) -> str:
    """A PostgreSQL database like `trained_demo_db`, built once, for tests to copy."""
    build_trained_demo(postgres_server.create_database(DEMO_TEMPLATE))
    return DEMO_TEMPLATE


@pytest.fixture
def demo_database_url(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A private copy of the trained demo store: a file copy, or CREATE DATABASE ... TEMPLATE."""
    if store_kind == "sqlite":
        path = tmp_path / "demo.db"
        shutil.copy(request.getfixturevalue("trained_demo_db"), path)
        yield sqlite_url(path)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("postgres_demo_template")
    name = unique_database_name()
    yield server.create_database(name, template=template)
    server.drop_database(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def service(settings: Settings) -> Iterator[SalescastService]:
    service = SalescastService(settings)
    yield service
    service.close()


@pytest.fixture
def demo_service(demo_database_url: str) -> Iterator[SalescastService]:
    """A service over a private copy of the trained demo store."""
    service = SalescastService(make_settings(demo_database_url))
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


def m5_department(store: str, dept: str) -> tuple[list[dt.date], list[float]]:
    """One M5 store x department's daily sales, in date order, with its real gaps."""
    import pandas as pd

    table = pd.read_csv(
        require_shared_data(M5_CSV), usecols=["store_id", "dept_id", "date", "sales"]
    )
    rows = table[(table["store_id"] == store) & (table["dept_id"] == dept)].sort_values("date")
    return [dt.date.fromisoformat(d) for d in rows["date"]], [float(v) for v in rows["sales"]]
