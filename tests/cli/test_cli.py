"""The `salescast` command as users run it: a real process, real exit status, stderr reasons."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from salescast.service import SalescastService
from tests.conftest import ADMIN_TOKEN


def run_cli(
    db: str, *args: str, cwd: Path | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run `salescast *args` on store `db`; `settings` are more SALESCAST_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}
    env.update(
        SALESCAST_DATABASE_URL=db,
        SALESCAST_ADMIN_TOKEN=ADMIN_TOKEN,
        SALESCAST_UNCERTAINTY_SAMPLES="50",
    )
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "salescast", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


@pytest.fixture
def db(demo_service: SalescastService) -> str:
    return demo_service.settings.database_url


def test_forecast_as_json_matches_the_http_shape(db: str) -> None:
    result = run_cli(db, "forecast", "CA_1-FOODS_3", "--horizon", "5", "--format", "json")
    assert result.returncode == 0, result.stderr
    forecast = json.loads(result.stdout)
    assert (forecast["model_version"], len(forecast["points"])) == (1, 5)


def test_forecast_as_csv_has_a_header_and_one_row_per_day(db: str) -> None:
    result = run_cli(db, "forecast", "CA_1-FOODS_3", "--horizon", "3", "--format", "csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["ds", "yhat", "yhat_lower", "yhat_upper"]
    assert [r[0] for r in rows[1:]] == ["2016-04-25", "2016-04-26", "2016-04-27"]


def test_unknown_product_exits_non_zero_with_one_line_on_stderr(db: str) -> None:
    result = run_cli(db, "forecast", "nope")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["salescast: unknown product 'nope'"]
    assert "Traceback" not in result.stderr


def test_ingest_of_a_bad_file_lists_line_and_column_and_stores_nothing(
    db: str, tmp_path: Path, demo_service: SalescastService
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,product_id,quantity\n2024-01-01,x,1\n01/02/2024,x,2\n")
    result = run_cli(db, "ingest", str(bad))
    assert result.returncode == 1
    assert "line 3" in result.stderr
    assert "date" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(demo_service.store.list_products()) == 5


def test_ingest_with_a_multi_column_key_then_products_lists_it(db: str, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("store_id,dept_id,date,sales\nS9,D1,2024-01-01,5\nS9,D1,2024-01-02,6\n")
    result = run_cli(
        db, "ingest", str(good), "--product-cols", "store_id,dept_id", "--quantity-col", "sales"
    )
    assert result.returncode == 0, result.stderr
    assert "ingested 2 rows for 1 products" in result.stdout
    assert "S9-D1" in run_cli(db, "products").stdout


def test_models_activate_rolls_back_and_models_lists_the_active_one(db: str) -> None:
    assert run_cli(db, "train", "--product", "CA_1-HOBBIES_1").returncode == 0
    rolled = run_cli(db, "models", "activate", "CA_1-HOBBIES_1", "1")
    assert rolled.returncode == 0, rolled.stderr
    assert "version 1 is active" in rolled.stdout
    missing = run_cli(db, "models", "activate", "CA_1-HOBBIES_1", "9")
    assert missing.returncode == 1
    assert "no model version 9" in missing.stderr


def test_train_needs_exactly_one_of_product_or_all(db: str) -> None:
    result = run_cli(db, "train")
    assert result.returncode == 2
    assert "--product" in result.stderr


def test_a_bad_setting_fails_at_start_naming_the_variable(db: str, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SALESCAST_REDIS_MAX_CONNECTIONS=many\n")
    result = run_cli(db, "products", cwd=tmp_path)
    assert result.returncode == 1
    assert "SALESCAST_REDIS_MAX_CONNECTIONS" in result.stderr


def test_demo_loads_and_trains_an_empty_store_once(database_url: str) -> None:
    first = run_cli(database_url, "demo")
    assert first.returncode == 0, first.stderr
    assert "loaded demo data: 3646 rows, 5 products" in first.stdout
    second = run_cli(database_url, "demo")
    assert "loaded demo data" not in second.stdout
    assert run_cli(database_url, "models", "WI_3-FOODS_2").stdout.count("*") == 1


def test_forecast_with_an_id_and_all_is_a_usage_error_without_a_traceback(db: str) -> None:
    result = run_cli(db, "forecast", "CA_1-FOODS_3", "--all", "--format", "csv")
    assert result.returncode == 2
    assert "exactly one of a product ID or --all" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
