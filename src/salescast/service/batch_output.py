"""The two shapes of a many-product forecast, written piece by piece as the stream goes.

Shared by `POST /forecasts` and `salescast forecast --all`, so both answer the
same bytes. A writer turns the start, each product's forecast and the end into
text; nothing is kept between pieces but a flag, so 5,000 products never sit
in memory at once.

- JSON: ``{"horizon": N, "interval": W, "forecasts": [<body of GET
  /products/{id}/forecast>, ...], "errors": [{"product_id", "status",
  "detail"}, ...]}``. `errors` comes last because it is only known at the end;
  it lists the products that failed after the stream began (see BatchError).
- CSV: the long shape, one row per product and day, header
  `CSV_COLUMNS`. CSV has no place for an error, so a CSV stream cannot report
  one: the HTTP route ends it early instead (the client sees a cut-off
  transfer), and the CLI prints it to stderr.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

import orjson

from salescast.forecasting import Forecast
from salescast.service.forecast_batches import BatchError
from salescast.service.forecasts import DEFAULT_HORIZON

BatchFormat = Literal["json", "csv"]

CSV_COLUMNS = ("product_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model_version")
"""The header of the CSV answer: the long shape, one row per product and day."""


class BatchWriter(Protocol):
    """Text for each piece of a many-product answer, in order: start, forecasts, end."""

    media_type: str
    reports_errors: bool
    """Whether `end` can list failed products; a stream that cannot must stop at one."""

    def start(self) -> str: ...

    def forecast(self, forecast: Forecast) -> str: ...

    def end(self, errors: Sequence[BatchError]) -> str: ...


class JSONBatchWriter:
    """One JSON document, streamed; each forecast is exactly the single route's body."""

    media_type = "application/json"
    reports_errors = True

    def __init__(self, *, horizon: int, interval: float) -> None:
        self._head = {"horizon": horizon, "interval": interval}
        self._first = True

    def start(self) -> str:
        # The head's fields are known up front; the document stays open for the list.
        return orjson.dumps(self._head).decode()[:-1] + ',"forecasts":['

    def forecast(self, forecast: Forecast) -> str:
        separator = "" if self._first else ","
        self._first = False
        return separator + orjson.dumps(forecast).decode()

    def end(self, errors: Sequence[BatchError]) -> str:
        # orjson writes a dataclass as an object of its fields, in order
        return '],"errors":' + orjson.dumps(list(errors)).decode() + "}\n"


class CSVBatchWriter:
    """CSV in the long shape; numbers written as Python prints floats (they round-trip)."""

    media_type = "text/csv; charset=utf-8"
    reports_errors = False

    def start(self) -> str:
        return self._rows([CSV_COLUMNS])

    def forecast(self, forecast: Forecast) -> str:
        product, version = forecast["product_id"], forecast["model_version"]
        return self._rows(
            (product, p["ds"], p["yhat"], p["yhat_lower"], p["yhat_upper"], version)
            for p in forecast["points"]
        )

    def end(self, errors: Sequence[BatchError]) -> str:
        del errors  # no place for them in CSV: see the module docstring
        return ""

    @staticmethod
    def _rows(rows: Iterable[Sequence[object]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()


def batch_writer(fmt: BatchFormat, *, horizon: int | None, interval: float) -> BatchWriter:
    """The writer of `fmt`. `horizon` is the one asked; None (each product its own default:
    30 periods, 24 for a monthly one) names the `DEFAULT_HORIZON` asked of most."""
    if fmt == "csv":
        return CSVBatchWriter()
    return JSONBatchWriter(
        horizon=DEFAULT_HORIZON if horizon is None else horizon, interval=interval
    )
