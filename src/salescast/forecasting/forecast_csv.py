"""Forecasts as CSV in the long shape: one row per product and day."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from salescast.forecasting.prediction import Forecast

FORECAST_CSV_COLUMNS = ("product_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model_version")
"""The header of every forecast CSV salescast writes (HTTP `text/csv`)."""


def forecast_csv(forecasts: Iterable[Forecast]) -> str:
    """The forecasts' points under `FORECAST_CSV_COLUMNS`.

    Numbers are written as Python's shortest round-trip form, the same digits
    the JSON body carries, so a CSV reader gets exactly the JSON's floats.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FORECAST_CSV_COLUMNS)
    for forecast in forecasts:
        product_id, version = forecast["product_id"], forecast["model_version"]
        for p in forecast["points"]:
            writer.writerow(
                [product_id, p["ds"], p["yhat"], p["yhat_lower"], p["yhat_upper"], version]
            )
    return buffer.getvalue()
