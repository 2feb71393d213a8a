"""The CLI's finish: --version, each command's own help, --format everywhere, demo's failures.

In process (typer's runner) where the real process adds nothing: these check
what is printed, and tests/cli/test_cli.py already runs the real command.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

import salescast
from salescast.cli.main import app
from salescast.cli.output import PRODUCT_COLUMNS
from salescast.service import SalescastService
from salescast.store.ingest import ColumnSpec
from tests.conftest import ADMIN_TOKEN, make_settings, sqlite_url
from tests.support.uvicorn_server import UvicornServer


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("SALESCAST_")]:
        monkeypatch.delenv(name)


def invoke(database_url: str, *args: str) -> Result:
    env = {"SALESCAST_DATABASE_URL": database_url, "SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN}
    return CliRunner().invoke(app, list(args), env=env)


def all_command_paths() -> Iterator[list[str]]:
    """Every command and subcommand, as the words that name it."""

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, child in getattr(command, "commands", {}).items():
            yield from walk(child, [*path, name])

    yield from walk(typer.main.get_command(app), [])


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"salescast {salescast.__version__}\n")


def test_every_help_is_its_own_commands_and_labels_no_flag_bool() -> None:
    paths = list(all_command_paths())
    assert ["models", "activate"] in paths
    assert ["plot"] in paths
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "<bool>" not in result.stdout, path
        assert f"salescast {' '.join(path)}".rstrip() in result.stdout.replace("python -m ", "")


def test_models_activate_help_shows_activates_usage_not_the_groups() -> None:
    result = CliRunner().invoke(app, ["models", "activate", "--help"])
    assert "models activate [OPTIONS] {ID} {VERSION}" in result.stdout
    assert "pin" in result.stdout
    assert "--keep" not in result.stdout  # prune's option is prune's


@pytest.mark.usefixtures("clean_env")
def test_products_as_json_and_csv_hold_the_stores_listing(
    demo_service: SalescastService,
) -> None:
    listing = demo_service.store.list_products()
    db = demo_service.settings.database_url
    as_json = invoke(db, "products", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    documents = json.loads(as_json.stdout)
    assert [d["product_id"] for d in documents] == [p.product_id for p in listing]
    assert documents[0] == {
        "product_id": listing[0].product_id,
        "frequency": listing[0].frequency,
        "sales_days": listing[0].sales_days,
        "first_date": str(listing[0].first_date),
        "last_date": str(listing[0].last_date),
        "active_version": listing[0].active_version,
        "data_version": listing[0].data_version,
        # the active version's backtest, as GET /products lists it
        "mase": documents[0]["mase"],
        "mase_seasonal_naive": documents[0]["mase_seasonal_naive"],
    }
    first = demo_service.store.get_listed_product(listing[0].product_id)
    assert (documents[0]["mase"], documents[0]["mase_seasonal_naive"]) == (
        first.mase,
        first.mase_seasonal_naive,
    )
    rows = list(csv.DictReader(io.StringIO(invoke(db, "products", "--format", "csv").stdout)))
    assert tuple(rows[0]) == PRODUCT_COLUMNS
    assert [(r["product_id"], int(r["sales_days"])) for r in rows] == [
        (p.product_id, p.sales_days) for p in listing
    ]
    bad = invoke(db, "products", "--format", "xml")
    assert bad.exit_code == 2
    assert "table, json or csv" in bad.output


@pytest.mark.usefixtures("clean_env")
def test_demo_names_the_products_it_could_not_train(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "tiny.db")
    service = SalescastService(make_settings(db))
    rows = [{"date": f"2024-01-{d:02}", "product_id": "tiny", "quantity": d} for d in range(1, 13)]
    service.ingest_rows(rows, columns=ColumnSpec())
    service.close()
    result = invoke(db, "demo")
    assert result.exit_code == 0, result.output  # the store is usable: make run serves it
    assert "1 of 1 products failed to train:" in result.stderr
    assert "tiny: product 'tiny' has 12 day(s) of sales" in result.stderr
    assert "0 activated" in result.stdout
    assert "1 failed" in result.stdout


# --- the cache commands ask a running server


@pytest.fixture(scope="module")
def server(trained_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("cli-cache") / "demo.db"
    shutil.copy(trained_demo_db, db)
    env = {
        "SALESCAST_DATABASE_URL": sqlite_url(db),
        "SALESCAST_WARMUP_ON_STARTUP": "false",
        "SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN,
        "SALESCAST_UNCERTAINTY_SAMPLES": "100",
    }
    with UvicornServer(env) as running:
        yield running.url


def cache_cli(url: str, *args: str) -> Result:
    env = {"SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN}
    result = CliRunner().invoke(app, ["cache", *args, "--url", url], env=env)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.usefixtures("clean_env")
def test_cache_status_is_json_by_default_and_the_same_fields_as_table_or_csv(server: str) -> None:
    document = json.loads(cache_cli(server, "status").stdout)
    assert document["backend"] == "memory"
    rows = dict(csv.reader(io.StringIO(cache_cli(server, "status", "--format", "csv").stdout)))
    assert rows.pop("field") == "value"
    assert rows["backend"] == "memory"
    assert rows["warmup.state"] == document["warmup"]["state"]
    assert rows["worker.pid"] == str(document["worker"]["pid"])
    table = cache_cli(server, "status", "--format", "table").stdout
    assert "warmup.state" in table
    assert "memory" in table


@pytest.mark.usefixtures("clean_env")
def test_cache_stats_as_csv_has_one_row_per_namespace(server: str) -> None:
    with urllib.request.urlopen(f"{server}/products/CA_1-FOODS_3/forecast?horizon=3") as answer:
        assert answer.status == 200  # the prediction namespace now has counts
    document = json.loads(cache_cli(server, "stats").stdout)
    rows = list(csv.DictReader(io.StringIO(cache_cli(server, "stats", "--format", "csv").stdout)))
    assert [r["namespace"] for r in rows] == list(document["namespaces"])
    table = cache_cli(server, "stats", "--format", "table").stdout
    assert "hit_rate" in table
    cleared = cache_cli(server, "clear", "--namespace", "plot", "--format", "csv").stdout
    assert "namespace,plot" in cleared
