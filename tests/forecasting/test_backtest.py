"""MASE and the seasonal-naive baseline, checked against values worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from salescast.forecasting.backtest import (
    by_period,
    score_holdout,
    seasonal_naive_forecast,
    seasonal_naive_scale,
    split_holdout,
)
from salescast.store.frequency import period_index

START = dt.date(2024, 1, 1)


def days(n: int, start: dt.date = START) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


def test_holdout_is_the_last_calendar_days_even_across_gaps() -> None:
    stored = [*days(10), dt.date(2024, 1, 20)]  # a gap from the 11th to the 19th
    assert split_holdout(stored, 5) == 10  # only the 20th is within 5 days


def test_a_weekly_holdout_counts_weeks_and_a_monthly_one_months() -> None:
    fridays = [dt.date(2024, 1, 5) + dt.timedelta(weeks=i) for i in range(20)]
    assert split_holdout(fridays, 13, "W-FRI") == 7
    firsts = [dt.date(2023 + m // 12, m % 12 + 1, 1) for m in range(20)]
    assert split_holdout(firsts, 6, "MS") == 14


def daily(values: dict[dt.date, float]) -> dict[int, float]:
    return by_period(values, "D")


def test_seasonal_naive_repeats_the_last_stored_week() -> None:
    train = daily({d: float(i) for i, d in enumerate(days(14))})
    monday = period_index(dt.date(2024, 1, 15), "D")
    assert seasonal_naive_forecast(train, monday, 7) == 7.0  # Monday again
    assert seasonal_naive_forecast(train, monday + 8, 7) == 8.0  # two weeks on


def test_seasonal_naive_skips_back_over_a_missing_day() -> None:
    train = daily({d: float(i) for i, d in enumerate(days(14)) if i != 7})
    assert seasonal_naive_forecast(train, period_index(dt.date(2024, 1, 15), "D"), 7) == 0.0


def test_weekly_seasonal_naive_looks_back_52_weeks_not_one() -> None:
    fridays = [dt.date(2022, 1, 7) + dt.timedelta(weeks=i) for i in range(60)]
    train = by_period({d: float(i) for i, d in enumerate(fridays)}, "W-FRI")
    next_friday = period_index(fridays[-1], "W-FRI") + 1
    assert seasonal_naive_forecast(train, next_friday, 52) == 60.0 - 52  # week 60's last year


def test_scale_is_the_mean_absolute_weekly_difference() -> None:
    # values rise by one a day: every lag-7 difference is exactly 7
    train = daily({d: float(i) for i, d in enumerate(days(21))})
    assert seasonal_naive_scale(train, 7) == 7.0


def test_scale_of_a_flat_series_is_none_so_mase_is_undefined() -> None:
    assert seasonal_naive_scale(daily(dict.fromkeys(days(21), 5.0)), 7) is None


def test_mase_divides_holdout_errors_by_the_in_sample_scale() -> None:
    train = {d: float(i) for i, d in enumerate(days(21))}
    holdout = days(7, start=dt.date(2024, 1, 22))
    actual = dict.fromkeys(holdout, 30.0)
    predicted = dict.fromkeys(holdout, 28.0)  # off by 2 every day
    metrics = score_holdout(train, actual, predicted)
    assert metrics.mae == pytest.approx(2.0)
    assert metrics.mase == pytest.approx(2.0 / 7.0)
    # naive: the last week of training, values 14..20, against 30
    assert metrics.mae_seasonal_naive == pytest.approx(sum(30 - v for v in range(14, 21)) / 7)
    assert metrics.mase_seasonal_naive == pytest.approx(metrics.mae_seasonal_naive / 7.0)
    assert (metrics.holdout_days, metrics.holdout_start) == (7, "2024-01-22")
