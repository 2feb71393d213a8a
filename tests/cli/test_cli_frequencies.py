"""Frequencies through `salescast` processes: ingest --freq, bad values and dates, the listing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.cli.test_cli import run_cli
from tests.conftest import sqlite_url

FRIDAYS = [dt.date(2024, 1, 5) + dt.timedelta(weeks=i) for i in range(10)]


def write_csv(path: Path, rows: list[tuple[str, dt.date, float]]) -> Path:
    path.write_text("product_id,date,quantity\n" + "".join(f"{p},{d},{q}\n" for p, d, q in rows))
    return path


def test_ingest_detects_a_weekly_product_and_the_listing_shows_it(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "store.db")
    daily = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(31)]
    upload = write_csv(
        tmp_path / "sales.csv",
        [("weekly", d, 10.0) for d in FRIDAYS] + [("daily", d, 1.0) for d in daily],
    )
    ingested = run_cli(db, "ingest", str(upload))
    assert ingested.returncode == 0, ingested.stderr
    write_csv(tmp_path / "months.csv", [("m", dt.date(2024, m, 1), 5.0) for m in (1, 2, 3)])
    assert run_cli(db, "ingest", str(tmp_path / "months.csv")).returncode == 0

    listed = run_cli(db, "products", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    frequencies = {p["product_id"]: p["frequency"] for p in json.loads(listed.stdout)}
    assert frequencies == {"weekly": "W-FRI", "daily": "D", "m": "MS"}
    table = run_cli(db, "products")
    assert "W-FRI" in table.stdout
    assert "frequency" in table.stdout


def test_irregular_dates_exit_1_naming_them_and_store_nothing(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "store.db")
    upload = write_csv(
        tmp_path / "odd.csv", [("odd", d, 1.0) for d in [*FRIDAYS, dt.date(2024, 1, 9)]]
    )
    refused = run_cli(db, "ingest", str(upload))
    assert refused.returncode == 1
    assert "product 'odd' has irregular dates" in refused.stderr
    assert "2024-01-09 is not" in refused.stderr
    assert "Traceback" not in refused.stderr
    # the suggested fix works: the Tuesday's sales go into that week's Friday
    fixed = run_cli(db, "ingest", str(upload), "--freq", "W-FRI")
    assert fixed.returncode == 0, fixed.stderr
    assert "ingested 10 rows for 1 products" in fixed.stdout


def test_a_bad_freq_is_a_usage_error_naming_the_choices(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "store.db")
    upload = write_csv(tmp_path / "sales.csv", [("p", FRIDAYS[0], 1.0)])
    refused = run_cli(db, "ingest", str(upload), "--freq", "W")
    assert refused.returncode == 2
    assert "--freq" in refused.stderr
    assert "W-MON ... W-SUN" in refused.stderr
    listed = run_cli(db, "products", "--format", "csv")
    assert listed.stdout.splitlines() == [
        "product_id,frequency,sales_days,first_date,last_date,active_version,data_version,"
        "mase,mase_seasonal_naive"
    ]
