"""A product's frequency (daily, weekly on one weekday, monthly on the 1st or the last day),
detected from its dates, and the period arithmetic backtests and forecasts count in.

A frequency is named by its pandas alias, which is also what Prophet's
`make_future_dataframe` takes: `D`; `W-MON` ... `W-SUN` (one point per week,
on that weekday); `MS` (month start: every date the 1st) or `ME` (month end:
every date the month's last day). Detection rules (decision 0012):

- every date the 1st of its month -> `MS`; every date its month's last day -> `ME`
  (checked first: such dates are never daily, and rarely all one weekday);
- every step between consecutive dates a multiple of 7 days -> `W-<weekday>`;
- otherwise, a median step under 7 days -> `D` (gaps of any length allowed:
  the store keeps gaps as gaps, e.g. the M5 series' closed Christmas days, or
  the days an intermittent item sold nothing);
- anything else is irregular: `FrequencyError` names the dates that break
  the nearest pattern (weekly dates with a stray weekday, monthly dates on
  the 15th, sparse dates). A single date is daily: nothing says otherwise.

Periods are numbered by `period_index` so that consecutive periods differ by 1
whatever the frequency; a season or a holdout is then a number of periods.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from salescast.store.errors import StoreError

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
FREQUENCIES = ("D", *(f"W-{day}" for day in WEEKDAYS), "MS", "ME")
"""Every frequency a product can have, as pandas aliases."""

PeriodUnit = Literal["day", "week", "month"]

_SEASON = {"day": 7, "week": 52, "month": 12}
_SHOWN_DATES = 5
# A Monday: week numbers count from it (any fixed Monday would do).
_EPOCH_MONDAY = dt.date(2000, 1, 3).toordinal()


class FrequencyError(StoreError, ValueError):
    """Sales dates that do not make one product's series, or a frequency that cannot be used.

    Nothing was stored. The message names the product, the dates and what to do.
    """

    def __init__(self, message: str, *, product_id: str | None = None) -> None:
        super().__init__(message)
        self.product_id = product_id


def parse_frequency(text: str) -> str:
    """A frequency alias from user input (any case); raises ValueError saying what is accepted."""
    value = text.strip().upper()
    if value in FREQUENCIES:
        return value
    if value in {"W", "WEEKLY"}:
        raise ValueError(
            f"{text!r}: name the weekday the weeks fall on, W-MON ... W-SUN (e.g. W-FRI)"
        )
    if value in {"M", "MONTHLY"}:
        raise ValueError(f"{text!r}: say MS (dated on the 1st) or ME (dated on the last day)")
    raise ValueError(f"{text!r} is not a frequency; use one of {', '.join(FREQUENCIES)}")


def unit_of(freq: str) -> PeriodUnit:
    """The calendar unit one period of `freq` is."""
    if freq == "D":
        return "day"
    return "week" if freq.startswith("W-") else "month"


def season_of(freq: str) -> int:
    """Periods in one season of the seasonal-naive forecast: 7 days, 52 weeks, 12 months."""
    return _SEASON[unit_of(freq)]


def fits(day: dt.date, freq: str) -> bool:
    """Whether `day` is a date a series of `freq` has (any day is a daily date)."""
    if freq == "D":
        return True
    if freq == "MS":
        return day.day == 1
    if freq == "ME":
        return day.day == calendar.monthrange(day.year, day.month)[1]
    return WEEKDAYS[day.weekday()] == freq[2:]


def period_index(day: dt.date, freq: str) -> int:
    """The number of the period of `freq` that holds `day`; consecutive periods differ by 1.

    A weekly period ends on its weekday (W-FRI: Saturday to Friday, dated the
    Friday), as in pandas; a monthly period is the calendar month.
    """
    unit = unit_of(freq)
    if unit == "day":
        return day.toordinal()
    if unit == "month":
        return day.year * 12 + day.month - 1
    anchor = _EPOCH_MONDAY + WEEKDAYS.index(freq[2:])
    return -((anchor - day.toordinal()) // 7)  # ceil: a day counts in the week it ends


def period_date(index: int, freq: str) -> dt.date:
    """The date a series of `freq` has for period `index` (inverse of `period_index`)."""
    unit = unit_of(freq)
    if unit == "day":
        return dt.date.fromordinal(index)
    if unit == "week":
        return dt.date.fromordinal(_EPOCH_MONDAY + WEEKDAYS.index(freq[2:]) + 7 * index)
    year, month = divmod(index, 12)
    first = dt.date(year, month + 1, 1)
    if freq == "MS":
        return first
    return first.replace(day=calendar.monthrange(year, month + 1)[1])


def detect_frequency(product_id: str, days: Iterable[dt.date]) -> str:
    """The frequency of one product's dates (see the module docstring).

    Raises FrequencyError naming the product and the dates that break the
    nearest pattern when the dates have none of them.
    """
    ordered = sorted(set(days))
    if len(ordered) < 2:
        return "D"
    for freq in ("MS", "ME"):
        if all(fits(day, freq) for day in ordered):
            return freq
    steps = [(b - a).days for a, b in itertools.pairwise(ordered)]
    if all(step % 7 == 0 for step in steps):
        return f"W-{WEEKDAYS[ordered[0].weekday()]}"
    if statistics.median(steps) < 7:
        return "D"
    raise FrequencyError(_irregular_message(product_id, ordered, steps), product_id=product_id)


def _irregular_message(product_id: str, ordered: Sequence[dt.date], steps: Sequence[int]) -> str:
    weekday, on_weekday = Counter(WEEKDAYS[d.weekday()] for d in ordered).most_common(1)[0]
    if sum(day.day == 1 for day in ordered) * 2 >= len(ordered):
        off = [day for day in ordered if day.day != 1]
        nearest = f"nearest to monthly on the 1st (MS), but {_are_not(off)}"
        resample = "MS"
    elif on_weekday * 2 >= len(ordered):
        off = [day for day in ordered if WEEKDAYS[day.weekday()] != weekday]
        nearest = f"nearest to weekly on {weekday} (W-{weekday}), but {_are_not(off)}"
        resample = f"W-{weekday}"
    else:
        nearest = (
            f"neither daily (most steps are {statistics.median(steps):g} days, not under 7), "
            "weekly on one weekday nor monthly on the 1st or the last day"
        )
        resample = "W-SUN or MS, or D to keep the dates as daily sales with gaps,"
    return (
        f"product {product_id!r} has irregular dates, {nearest}; ingest with --freq "
        f"(HTTP: freq=) {resample} to sum the sales into those periods, or correct the dates"
    )


def _are_not(days: Sequence[dt.date]) -> str:
    return f"{describe_dates(days)} {'is' if len(days) == 1 else 'are'} not"


def describe_dates(days: Sequence[dt.date]) -> str:
    """Up to five dates of `days` for a message, with how many more there are."""
    shown = ", ".join(day.isoformat() for day in days[:_SHOWN_DATES])
    more = f" and {len(days) - _SHOWN_DATES} more" if len(days) > _SHOWN_DATES else ""
    return shown + more
