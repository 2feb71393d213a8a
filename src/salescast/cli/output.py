"""How the CLI prints tables, forecasts and model versions."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from typing import Literal

import orjson
from rich.console import Console
from rich.table import Table

from salescast.forecasting import Forecast, ModelVersionInfo
from salescast.store import ProductSummary
from salescast.store.frequency import unit_of

OutputFormat = Literal["table", "json", "csv"]

# Off a terminal (pipes, CI logs) rich would wrap at 80 columns and cut ids.
console = Console(width=None if sys.stdout.isatty() else 160)


PRODUCT_COLUMNS = (
    "product_id",
    "frequency",
    "sales_days",
    "first_date",
    "last_date",
    "active_version",
    "data_version",
)
"""The CSV header of `salescast products --format csv` (the fields of GET /products)."""


def print_products(products: Sequence[ProductSummary], fmt: OutputFormat = "table") -> None:
    rows = [{name: getattr(p, name) for name in PRODUCT_COLUMNS} for p in products]
    if fmt == "json":  # the shape of GET /products
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, PRODUCT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
        return
    table = Table(
        "product", "frequency", "sales days", "first", "last", "active version", "data version"
    )
    for p in products:
        table.add_row(
            p.product_id,
            p.frequency,
            str(p.sales_days),
            _text(p.first_date),
            _text(p.last_date),
            _text(p.active_version),
            str(p.data_version),
        )
    console.print(table)


MODEL_COLUMNS = (
    "version",
    "active",
    "pinned",
    "created_at",
    "train_start",
    "train_end",
    "data_version",
    "mase",
    "mase_seasonal_naive",
    "model_bytes",
    "not_activated_reason",
)
"""The CSV header of `salescast models ID --format csv`."""


def print_models(versions: Sequence[ModelVersionInfo], fmt: OutputFormat = "table") -> None:
    if fmt == "json":  # the shape of GET /products/{id}/models
        sys.stdout.write(orjson.dumps(list(versions), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(MODEL_COLUMNS)
        for v in versions:
            writer.writerow(_model_row(v))
        sys.stdout.write(buffer.getvalue())
        return
    table = Table(
        "version", "active", "pinned", "created", "window", "MASE", "MASE naive", "KB",
        "not activated because",
    )  # fmt: skip
    for v in versions:
        table.add_row(
            str(v.version),
            "*" if v.active else "",
            "pinned" if v.pinned else "",
            v.created_at.isoformat(timespec="seconds"),
            f"{v.train_start} .. {v.train_end}",
            _number(v.metrics.get("mase")),
            _number(v.metrics.get("mase_seasonal_naive")),
            f"{v.model_bytes / 1024:.1f}",
            v.not_activated_reason or "",
        )
    console.print(table)


def _model_row(v: ModelVersionInfo) -> list[object]:
    return [
        v.version,
        v.active,
        v.pinned,
        v.created_at.isoformat(),
        v.train_start.isoformat(),
        v.train_end.isoformat(),
        v.data_version,
        v.metrics.get("mase"),
        v.metrics.get("mase_seasonal_naive"),
        v.model_bytes,
        v.not_activated_reason or "",
    ]


def print_forecast(forecast: Forecast, fmt: OutputFormat) -> None:
    if fmt == "json":
        sys.stdout.write(orjson.dumps(forecast, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["ds", "yhat", "yhat_lower", "yhat_upper"])
        for p in forecast["points"]:
            writer.writerow([p["ds"], p["yhat"], p["yhat_lower"], p["yhat_upper"]])
        sys.stdout.write(buffer.getvalue())
        return
    title = (
        f"{forecast['product_id']}: model v{forecast['model_version']}, "
        f"{forecast['horizon']} {_unit(forecast)}s, {forecast['interval']:.0%} interval"
    )
    table = Table("date", "forecast", "lower", "upper", title=title)
    for p in forecast["points"]:
        table.add_row(
            p["ds"], f"{p['yhat']:.1f}", f"{p['yhat_lower']:.1f}", f"{p['yhat_upper']:.1f}"
        )
    console.print(table)


def _unit(forecast: Forecast) -> str:
    # Forecasts cached before frequencies existed carry none: they are daily.
    return unit_of(str(forecast.get("frequency", "D")))


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"
