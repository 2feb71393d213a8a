"""`salescast forecast` answers through the service's forecast read, as the HTTP route does."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from typer.testing import CliRunner

from salescast.cli.main import app
from salescast.service import ForecastRead, SalescastService
from tests.conftest import ADMIN_TOKEN


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
