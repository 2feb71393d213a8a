"""Every command that opens the service closes it (its cache's Redis connections and
subscriber thread, the store's pool), also when the command fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from salescast.cli.main import app
from salescast.service import SalescastService

PRODUCT = "CA_1-FOODS_3"


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[SalescastService]:
    """The services closed while the test runs, in order."""
    closed: list[SalescastService] = []
    close = SalescastService.close

    def counted(self: SalescastService) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(SalescastService, "close", counted)
    return closed


@pytest.fixture
def demo_store(demo_service: SalescastService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run on a copy of the trained demo store, and on no other setting."""
    for name in [k for k in os.environ if k.startswith("SALESCAST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SALESCAST_DATABASE_URL", demo_service.settings.database_url)


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["models", "list", PRODUCT], 0),
        (["models", "activate", PRODUCT, "1"], 0),
        (["models", "unpin", PRODUCT], 0),
        (["models", "delete", PRODUCT, "1"], 1),  # the active version: refused
        (["models", "prune", PRODUCT, "--keep", "1"], 0),
        (["products"], 0),
        (["forecast", PRODUCT, "--horizon", "2"], 0),
        (["forecast", "no-such-product"], 1),
        (["train", "--product", "no-such-product"], 1),
        (["demo"], 0),  # the store holds data and models: nothing to load or train
    ],
)
@pytest.mark.usefixtures("demo_store")
def test_a_command_closes_the_service_it_opened(
    closes: list[SalescastService],
    args: list[str],
    exit_code: int,
) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == exit_code, result.output
    assert len(closes) == 1


@pytest.mark.usefixtures("demo_store")
def test_ingest_closes_the_service(
    closes: list[SalescastService],
    tmp_path: Path,
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("date,product_id,quantity\n2030-01-01,new-one,3\n")
    result = CliRunner().invoke(app, ["ingest", str(rows)])
    assert result.exit_code == 0, result.output
    assert len(closes) == 1
