"""Sum an upload's sales into the periods of a declared frequency (`--freq`, `freq=`)."""

from __future__ import annotations

import datetime as dt

from salescast.store.frequency import period_date, period_index
from salescast.store.ingest import ParsedSales


def resample(parsed: ParsedSales, freq: str) -> ParsedSales:
    """The upload with each product's quantities summed per period of `freq`.

    A period is dated as a series of `freq` is (the week's weekday, the month's
    1st or last day); its line is the first line that contributed to it, so a
    later problem (a period already stored) still names a line of the upload.
    Only the rows of this upload are summed: a period partly uploaded earlier is
    already stored, which `append` refuses and `replace` overwrites. Daily
    uploads are returned as they are.
    """
    if freq == "D":
        return parsed
    totals: dict[tuple[str, dt.date], float] = {}
    lines: dict[tuple[str, dt.date], int | None] = {}
    for index, (product, day, quantity) in enumerate(parsed.rows):
        key = (product, period_date(period_index(day, freq), freq))
        totals[key] = totals.get(key, 0.0) + quantity
        lines.setdefault(key, parsed.line_of(index))
    rows = [(product, day, total) for (product, day), total in totals.items()]
    row_lines = [line or 0 for line in lines.values()] if parsed.lines else []
    return ParsedSales(rows, row_lines, parsed.unit)
