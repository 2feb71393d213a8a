"""How the CLI prints products, forecasts, model versions and the server's cache documents.

Every listing comes as `table` (for people), `json` (the HTTP API's shape) or
`csv` (one header line, one row per item).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import orjson
import typer
from rich.console import Console
from rich.table import Table

from salescast.forecasting import Forecast, ModelVersionInfo
from salescast.forecasting.adjustment import POINT_ADJUSTMENT
from salescast.store import ListedProduct, ProductPage
from salescast.store.frequency import unit_of

OutputFormat = Literal["table", "json", "csv"]


def output_format(fmt: str) -> OutputFormat:
    """`--format`'s value, or a usage error naming the three formats."""
    if fmt not in ("table", "json", "csv"):
        raise typer.BadParameter("must be table, json or csv", param_hint="--format")
    return "json" if fmt == "json" else "csv" if fmt == "csv" else "table"


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
    "mase",
    "mase_seasonal_naive",
)
"""The CSV header of `salescast products --format csv` (the fields of GET /products)."""


def print_products(products: Sequence[ListedProduct], fmt: OutputFormat = "table") -> None:
    if fmt == "json":  # the shape of GET /products
        sys.stdout.write(orjson.dumps(list(products), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if fmt == "csv":
        rows = ([getattr(p, column) for column in PRODUCT_COLUMNS] for p in products)
        _write_csv(PRODUCT_COLUMNS, rows)
        return
    table = Table(
        "product", "frequency", "sales days", "first", "last", "active version",
        "data version", "MASE", "MASE naive",
    )  # fmt: skip
    for p in products:
        table.add_row(
            p.product_id,
            p.frequency,
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
    "mase_mean_over_windows",
    "coverage",
    "correction",
    "model_bytes",
    "not_activated_reason",
)
"""The CSV header of `salescast models ID --format csv`: `mase` and `mase_seasonal_naive` are
the last backtest window's, `coverage` the share of its actuals inside the served band,
`correction` the candidate its forecasts correct Prophet's points by (empty: none stored)."""


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
        "version", "active", "pinned", "created", "window", "MASE", "MASE naive",
        "MASE mean", "coverage", "correction", "KB", "not activated because",
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
            _number(_windows_mean(v, "mase")),
            _percent(v.metrics.get("coverage")),
            _correction(v) or "-",
            f"{v.model_bytes / 1024:.1f}",
            v.not_activated_reason or "",
        )
    console.print(table)


def _windows_mean(v: ModelVersionInfo, name: str) -> object:
    """The mean over the version's backtest windows (None for a single-window backtest)."""
    means = v.metrics.get("mean_over_windows")
    return means.get(name) if isinstance(means, dict) else None


def _correction(v: ModelVersionInfo) -> str:
    """The name of the candidate the version corrects Prophet's points by ("" for none)."""
    stored = v.metrics.get(POINT_ADJUSTMENT)
    return str(stored.get("candidate", "")) if isinstance(stored, dict) else ""


def _percent(value: object) -> str:
    return f"{100 * value:.0f} %" if isinstance(value, int | float) else "-"


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
        _windows_mean(v, "mase"),
        v.metrics.get("coverage"),
        _correction(v),
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


def print_document(document: Mapping[str, Any], fmt: OutputFormat) -> None:
    """A server's JSON answer (cache status, warm-up, clear): as is, or one field a row.

    Nested fields are flattened to dotted names (`warmup.state`), lists
    written as JSON, so the table and the CSV hold every field of the JSON.
    """
    if fmt == "json":
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    fields = list(_flattened(document))
    if fmt == "csv":
        _write_csv(("field", "value"), ([k, _cell(v)] for k, v in fields))
        return
    table = Table("field", "value")
    for key, value in fields:
        table.add_row(key, _cell(value))
    console.print(table)


STATS_COLUMNS = (
    "namespace", "hits", "misses", "hit_rate", "computations", "errors",
    "l1.hits", "l2.hits", "l1.latency.p95_ms", "l2.latency.p95_ms",
)  # fmt: skip
"""The table of `salescast cache stats`: one row per namespace (CSV: every field)."""


def print_cache_stats(document: Mapping[str, Any], fmt: OutputFormat) -> None:
    """`GET /cache/stats`: as is, or one row per namespace."""
    if fmt == "json":
        print_document(document, fmt)
        return
    rows = [dict(_flattened(ns)) for ns in document.get("namespaces", {}).values()]
    if fmt == "csv":
        columns = list(dict.fromkeys(key for row in rows for key in row))
        _write_csv(columns, ([_cell(row.get(c)) for c in columns] for row in rows))
        return
    worker = document.get("worker", {})
    title = f"cache statistics of worker pid {worker.get('pid')} (each worker counts its own)"
    table = Table(*STATS_COLUMNS, title=title)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in STATS_COLUMNS))
    console.print(table)


def _flattened(document: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in document.items():
        if isinstance(value, Mapping) and value:
            yield from _flattened(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def _write_csv(header: Sequence[str], rows: Iterator[Sequence[object]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    sys.stdout.write(buffer.getvalue())


def _unit(forecast: Forecast) -> str:
    # Forecasts cached before frequencies existed carry none: they are daily.
    return unit_of(str(forecast.get("frequency", "D")))


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"
