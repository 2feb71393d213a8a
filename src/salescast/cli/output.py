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
from salescast.store import ListedProduct, ProductPage

OutputFormat = Literal["table", "json", "csv"]

# Off a terminal (pipes, CI logs) rich would wrap at 80 columns and cut ids.
console = Console(width=None if sys.stdout.isatty() else 160)


def print_products(products: Sequence[ListedProduct]) -> None:
    table = Table(
        "product", "sales days", "first", "last", "active version", "data version", "MASE",
        "MASE naive",
    )  # fmt: skip
    for p in products:
        table.add_row(
            p.product_id,
            str(p.sales_days),
            _text(p.first_date),
            _text(p.last_date),
            _text(p.active_version),
            str(p.data_version),
            _number(p.mase),
            _number(p.mase_seasonal_naive),
        )
    console.print(table)


def page_summary(page: ProductPage) -> str:
    """Which products of how many a listing showed, and how to ask for the next page."""
    if not page.products:
        return f"no products of {page.total} on this page"
    first = page.query.offset + 1
    shown = f"products {first}-{first + len(page.products) - 1} of {page.total}"
    if page.next_offset is None:
        return shown
    return f"{shown}; next page: --offset {page.next_offset} (or --all)"


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
        f"{forecast['horizon']} days, {forecast['interval']:.0%} interval"
    )
    table = Table("date", "forecast", "lower", "upper", title=title)
    for p in forecast["points"]:
        table.add_row(
            p["ds"], f"{p['yhat']:.1f}", f"{p['yhat_lower']:.1f}", f"{p['yhat_upper']:.1f}"
        )
    console.print(table)


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"
