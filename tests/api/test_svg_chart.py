"""The server-side SVG chart: the forecast's numbers in the markup, escaped text, empty input."""

from __future__ import annotations

import datetime as dt
import re

from salescast.api.pages.svg_chart import ForecastPoint, HistoryPoint, render_chart

DAY = dt.date(2024, 3, 1)


def test_each_forecast_point_carries_its_exact_values_and_the_band_spans_them() -> None:
    history = [HistoryPoint(DAY + dt.timedelta(days=i), float(i)) for i in range(10)]
    forecast = [
        ForecastPoint(DAY + dt.timedelta(days=10 + i), 10.1 + i / 3, 8.0 + i, 12.5 + i)
        for i in range(5)
    ]
    svg = str(render_chart(history, forecast, title="t"))
    drawn = re.findall(
        r'data-ds="([^"]+)" data-yhat="([^"]+)" '
        r'data-yhat-lower="([^"]+)" data-yhat-upper="([^"]+)"',
        svg,
    )
    assert drawn == [
        (p.day.isoformat(), repr(p.yhat), repr(p.lower), repr(p.upper)) for p in forecast
    ]
    band = re.search(r'<polygon class="band" points="([^"]+)"', svg)
    assert band is not None
    assert len(band.group(1).split()) == 2 * len(forecast)
    assert svg.count('<polyline class="history"') == 1


def test_text_in_the_chart_is_escaped() -> None:
    svg = str(render_chart([HistoryPoint(DAY, 1.0)], [], title='<script>"x"</script>'))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_nothing_to_draw_says_so_instead_of_an_empty_svg() -> None:
    assert "Nothing to draw" in str(render_chart([], [], title="t"))
