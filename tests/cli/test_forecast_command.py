"""`salescast forecast` (one product, or `--all`) answers through the service's forecast read,
as the HTTP routes do."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from salescast.cli.main import app
from salescast.service import ForecastRead, SalescastService
from salescast.service.batch_output import CSV_COLUMNS
from salescast.store.ingest import ColumnSpec
from salescast.store.schema import ModelVersion
from tests.conftest import ADMIN_TOKEN

DEMO_PRODUCTS = [
    "CA_1-FOODS_3",
    "CA_1-HOBBIES_1",
    "CA_3-FOODS_3",
    "TX_2-HOUSEHOLD_1",
    "WI_3-FOODS_2",
]


def test_the_forecast_command_prints_what_read_forecast_returns(
    demo_service: SalescastService, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("SALESCAST_")]:
        monkeypatch.delenv(name)
    reads: list[tuple[SalescastService, str, dict[str, Any], ForecastRead]] = []
    read_forecast = SalescastService.read_forecast

    def recorded(self: SalescastService, product_id: str, **kwargs: Any) -> ForecastRead:
        read = read_forecast(self, product_id, **kwargs)
        reads.append((self, product_id, kwargs, read))
        return read

    monkeypatch.setattr(SalescastService, "read_forecast", recorded)
    env = {
        "SALESCAST_DATABASE_URL": demo_service.settings.database_url,
        "SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN,
        "SALESCAST_UNCERTAINTY_SAMPLES": "50",
    }
    args = ["forecast", "CA_1-FOODS_3", "--horizon", "4", "--interval", "0.5", "--format", "json"]
    result = CliRunner().invoke(app, args, env=env)
    assert len(reads) == 1, result.output
    [(service, product_id, kwargs, read)] = reads
    service.close()  # the command's own service: its process would exit here
    assert result.exit_code == 0, result.output
    assert (product_id, kwargs) == ("CA_1-FOODS_3", {"horizon": 4, "interval": 0.5})
    assert json.loads(result.stdout) == read.forecast


def run_forecast(service: SalescastService, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """`salescast forecast *args` in process, on `service`'s store and nothing else."""
    for name in [k for k in os.environ if k.startswith("SALESCAST_")]:
        monkeypatch.delenv(name)
    env = {
        "SALESCAST_DATABASE_URL": service.settings.database_url,
        # as the service's: prediction draws this many samples for the intervals
        "SALESCAST_UNCERTAINTY_SAMPLES": str(service.settings.uncertainty_samples),
    }
    return CliRunner().invoke(app, ["forecast", *args], env=env)


def add_untrained_product(service: SalescastService) -> None:
    rows = [{"date": "2024-01-01", "product_id": "fresh", "quantity": 1}]
    service.ingest_rows(rows, columns=ColumnSpec())


def record_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What each `SalescastService.read_forecast` call returned, by product: the CLI's own
    service computes its forecasts, and Prophet's intervals are sampled afresh each time."""
    forecasts: dict[str, Any] = {}
    read_forecast = SalescastService.read_forecast

    def recorded(self: SalescastService, product_id: str, **kwargs: Any) -> ForecastRead:
        read = read_forecast(self, product_id, **kwargs)
        forecasts[product_id] = read.forecast
        return read

    monkeypatch.setattr(SalescastService, "read_forecast", recorded)
    return forecasts


def test_forecast_all_as_csv_has_every_trained_product_with_read_forecasts_numbers(
    demo_service: SalescastService, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_untrained_product(demo_service)
    reads = record_reads(monkeypatch)
    result = run_forecast(
        demo_service, monkeypatch, "--all", "--horizon", "3", "--interval", "0.6", "--format", "csv"
    )
    assert result.exit_code == 0, result.output
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    rows = list(reader)
    assert list(reads) == DEMO_PRODUCTS  # "fresh" has no model: not even read
    expected = [
        (f["product_id"], p["ds"], p["yhat"], p["yhat_lower"], p["yhat_upper"], f["model_version"])
        for f in reads.values()
        for p in f["points"]
    ]
    parsed = [
        (r["product_id"], r["ds"], float(r["yhat"]), float(r["yhat_lower"]),
         float(r["yhat_upper"]), int(r["model_version"]))
        for r in rows
    ]  # fmt: skip
    assert len(parsed) == 15
    assert parsed == expected


def test_forecast_all_as_json_is_what_post_forecasts_answers(
    demo_service: SalescastService, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = record_reads(monkeypatch)
    result = run_forecast(demo_service, monkeypatch, "--all", "--horizon", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == {
        "horizon": 2,
        "interval": 0.8,
        "forecasts": list(reads.values()),
        "errors": [],
    }
    answered = client.post("/forecasts", json={"horizon": 2}).json()
    assert set(answered) == set(printed)
    for mine, theirs in zip(printed["forecasts"], answered["forecasts"], strict=True):
        assert set(mine) == set(theirs)
        # the same model predicts the same values; the intervals are sampled per computation
        assert [p["yhat"] for p in mine["points"]] == [p["yhat"] for p in theirs["points"]]


def test_forecast_all_as_tables_prints_one_per_product(
    demo_service: SalescastService, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_forecast(demo_service, monkeypatch, "--all", "--horizon", "2")
    assert result.exit_code == 0, result.output
    for product_id in DEMO_PRODUCTS:
        assert f"{product_id}: model v1, 2 days" in result.stdout


def test_a_product_failing_in_forecast_all_is_named_on_stderr_and_the_rest_written(
    demo_service: SalescastService, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = DEMO_PRODUCTS[1]
    with demo_service.database.session() as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.product_id == broken).values(model_blob=b"junk")
        )
    result = run_forecast(demo_service, monkeypatch, "--all", "--horizon", "2", "--format", "json")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"salescast: {broken}: ")
    document = json.loads(result.stdout)
    assert [f["product_id"] for f in document["forecasts"]] == [
        p for p in DEMO_PRODUCTS if p != broken
    ]
    assert [(e["product_id"], e["status"]) for e in document["errors"]] == [(broken, 503)]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["CA_1-FOODS_3", "--all"], "exactly one of a product ID or --all"),
        ([], "exactly one of a product ID or --all"),
        (["--all", "--horizon", "0"], "--horizon"),
        (["--all", "--horizon", "731"], "--horizon"),
        (["--all", "--interval", "1"], "--interval"),
        (["--all", "--format", "xml"], "--format"),
    ],
)
def test_bad_forecast_arguments_are_usage_errors(
    demo_service: SalescastService, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    result = run_forecast(demo_service, monkeypatch, *args)
    assert result.exit_code == 2
    assert says in result.stderr
    assert result.stdout == ""
