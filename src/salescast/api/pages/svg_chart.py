"""History and forecast with its interval band as one inline SVG, drawn on the server.

No chart library: the dashboard must work without internet, and a line, a band
and two axes are a hundred lines of arithmetic (docs/decisions/0012). The SVG
carries its numbers: every forecast point is a `<circle>` with `data-ds`,
`data-yhat`, `data-yhat-lower` and `data-yhat-upper` (the values exactly as the
forecast has them, `repr` of the float) and a `<title>` a screen reader or a
hover shows, so tests and users can check the picture against the API.
Colours come from classes styled in dashboard.css (the pages' CSP refuses
inline styles).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 800
HEIGHT = 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 16, 36
_Y_TICKS = 5
_X_TICKS = 6


@dataclass(frozen=True)
class HistoryPoint:
    day: dt.date
    quantity: float


@dataclass(frozen=True)
class ForecastPoint:
    day: dt.date
    yhat: float
    lower: float
    upper: float


@dataclass(frozen=True)
class _Scale:
    first: dt.date
    last: dt.date
    low: float
    high: float

    def x(self, day: dt.date) -> float:
        span = max((self.last - self.first).days, 1)
        return _LEFT + (day - self.first).days / span * (WIDTH - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        return HEIGHT - _BOTTOM - (value - self.low) / span * (HEIGHT - _TOP - _BOTTOM)


def render_chart(
    history: Sequence[HistoryPoint], forecast: Sequence[ForecastPoint], *, title: str
) -> Markup:
    """The chart as SVG markup (safe to put in a page); `title` names it for screen readers."""
    if not history and not forecast:
        return Markup('<p class="empty">Nothing to draw: no sales and no forecast.</p>')
    scale = _scale(history, forecast)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title" preserveAspectRatio="xMidYMid meet">',
        f'<title id="chart-title">{escape(title)}</title>',
        *_axes(scale),
    ]
    if forecast:
        band = [f"{scale.x(p.day):.1f},{scale.y(p.upper):.1f}" for p in forecast]
        band += [f"{scale.x(p.day):.1f},{scale.y(p.lower):.1f}" for p in reversed(forecast)]
        parts.append(f'<polygon class="band" points="{" ".join(band)}"/>')
    if history:
        parts.append(_line("history", [(scale.x(p.day), scale.y(p.quantity)) for p in history]))
    if forecast:
        parts.append(_line("forecast", [(scale.x(p.day), scale.y(p.yhat)) for p in forecast]))
        parts.append('<g class="forecast-points">')
        parts += [_point(scale, p) for p in forecast]
        parts.append("</g>")
    parts.append("</svg>")
    # Every text put in is escaped above; the rest is numbers and fixed markup.
    return Markup("".join(parts))  # noqa: S704


def _scale(history: Sequence[HistoryPoint], forecast: Sequence[ForecastPoint]) -> _Scale:
    days = [p.day for p in history] + [p.day for p in forecast]
    values = [p.quantity for p in history]
    values += [v for p in forecast for v in (p.lower, p.upper, p.yhat)]
    low, high = min(values), max(values)
    low = min(low, 0.0)  # sales charts start at zero unless returns go below it
    return _Scale(min(days), max(days), low, high + (high - low) * 0.05 or 1.0)


def _axes(scale: _Scale) -> list[str]:
    parts = [
        f'<line class="axis" x1="{_LEFT}" y1="{HEIGHT - _BOTTOM}" '
        f'x2="{WIDTH - _RIGHT}" y2="{HEIGHT - _BOTTOM}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{HEIGHT - _BOTTOM}"/>',
    ]
    for i in range(_Y_TICKS + 1):
        value = scale.low + (scale.high - scale.low) * i / _Y_TICKS
        y = scale.y(value)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_number(value)}</text>"
        )
    span = (scale.last - scale.first).days
    for i in range(_X_TICKS + 1):
        day = scale.first + dt.timedelta(days=round(span * i / _X_TICKS))
        x = scale.x(day)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - _BOTTOM + 18}" text-anchor="middle">'
            f"{day.isoformat()}</text>"
        )
    return parts


def _line(kind: str, points: list[tuple[float, float]]) -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline class="{kind}" fill="none" points="{path}"/>'


def _point(scale: _Scale, p: ForecastPoint) -> str:
    label = f"{p.day.isoformat()}: {p.yhat:.1f} ({p.lower:.1f} to {p.upper:.1f})"
    return (
        f'<circle class="point" cx="{scale.x(p.day):.1f}" cy="{scale.y(p.yhat):.1f}" r="2.5" '
        f'data-ds="{p.day.isoformat()}" data-yhat="{p.yhat!r}" '
        f'data-yhat-lower="{p.lower!r}" data-yhat-upper="{p.upper!r}">'
        f"<title>{escape(label)}</title></circle>"
    )


def _number(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"
