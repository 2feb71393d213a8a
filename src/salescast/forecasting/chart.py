"""A forecast as a picture: the history tail, the forecast line and its interval band.

Drawn with matplotlib's object API on the Agg canvas (no pyplot: no global
figure state, so worker threads can render side by side), imported only when
a picture is asked for, since importing matplotlib costs a server or a CLI
command a good part of a second.

The same forecast and history give the same bytes: SVG ids are salted with a
fixed string, no date is written into the file, and nothing time-dependent
(such as the forecast's `generated_at`) is drawn, so an ETag names one body.
SVG output keeps its text as text and carries the plotted numbers in its
metadata (`dc:description`, a JSON array of the forecast points), so a reader
or a test can check a chart against the API's numbers.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any, Literal

import orjson

from salescast.forecasting.prediction import Forecast

ChartFormat = Literal["png", "svg"]
CHART_FORMATS: tuple[ChartFormat, ...] = ("png", "svg")
CHART_MEDIA_TYPES: dict[ChartFormat, str] = {"png": "image/png", "svg": "image/svg+xml"}
MIN_HISTORY_TAIL_DAYS = 90
WIDTH_INCHES, HEIGHT_INCHES, DPI = 10.0, 4.5, 100  # a 1000 x 450 PNG


def history_tail_days(horizon: int) -> int:
    """Days of history drawn before the forecast: 90, or three horizons for long ones."""
    return max(MIN_HISTORY_TAIL_DAYS, 3 * horizon)


def history_tail_start(forecast: Forecast) -> dt.date:
    """The first history day the chart of `forecast` shows."""
    first = dt.date.fromisoformat(forecast["points"][0]["ds"])
    return first - dt.timedelta(days=history_tail_days(forecast["horizon"]))


def render_forecast_chart(
    forecast: Forecast, history: Sequence[dict[str, Any]], *, fmt: ChartFormat
) -> bytes:
    """PNG or SVG bytes of `forecast` over `history` (`{"date", "quantity"}` points)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _configure_matplotlib()
    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    _draw(axes, forecast, history)
    buffer = io.BytesIO()
    if fmt == "svg":
        points = orjson.dumps(forecast["points"]).decode()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Description": points})
    else:
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _draw(axes: Any, forecast: Forecast, history: Sequence[dict[str, Any]]) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    points = forecast["points"]
    days = [dt.date.fromisoformat(p["ds"]) for p in points]
    if history:
        axes.plot(
            [dt.date.fromisoformat(h["date"]) for h in history],
            [h["quantity"] for h in history],
            color="#555555",
            linewidth=1.0,
            label="history",
            gid="history-line",
        )
    axes.fill_between(
        days,
        [p["yhat_lower"] for p in points],
        [p["yhat_upper"] for p in points],
        color="#1f77b4",
        alpha=0.25,
        linewidth=0,
        label=f"{forecast['interval']:.0%} interval",
        gid="interval-band",
    )
    axes.plot(
        days,
        [p["yhat"] for p in points],
        color="#1f77b4",
        linewidth=1.8,
        label="forecast",
        gid="forecast-line",
    )
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib has no hints here
    axes.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]  # as above
    axes.xaxis.set_major_formatter(formatter)
    axes.set_ylabel("units sold per day")
    axes.grid(visible=True, alpha=0.3)
    axes.legend(loc="upper left")
    axes.set_title(
        f"{forecast['product_id']}: model v{forecast['model_version']}, "
        f"{forecast['horizon']} days ahead, {forecast['interval']:.0%} interval"
    )


def _configure_matplotlib() -> None:
    """Process-wide settings every chart relies on (set once; the same values each time)."""
    import matplotlib

    # Fixed SVG ids (they are otherwise random per file) and text kept as <text>.
    matplotlib.rcParams["svg.hashsalt"] = "salescast"
    matplotlib.rcParams["svg.fonttype"] = "none"
