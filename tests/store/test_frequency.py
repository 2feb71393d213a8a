"""Frequency detection from dates, the period arithmetic, and resampling into declared periods."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from salescast.store import Database, SalesStore
from salescast.store.frequency import (
    FREQUENCIES,
    FrequencyError,
    detect_frequency,
    fits,
    parse_frequency,
    period_date,
    period_index,
)
from salescast.store.ingest import ParsedSales
from salescast.store.resample import resample

FRIDAYS = [dt.date(2024, 1, 5) + dt.timedelta(weeks=i) for i in range(12)]
DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(40)]


def month_starts(n: int) -> list[dt.date]:
    return [dt.date(2022 + m // 12, m % 12 + 1, 1) for m in range(n)]


def test_consecutive_days_with_gaps_are_daily() -> None:
    with_gaps = [d for i, d in enumerate(DAYS) if i % 10 not in (3, 4, 5)]
    assert detect_frequency("p", with_gaps) == "D"


def test_an_intermittent_daily_series_is_still_daily() -> None:
    # sold on about one day in three: most steps are a few days, none a week pattern
    sold = [d for i, d in enumerate(DAYS) if i % 3 == 0 or i % 7 == 1]
    assert detect_frequency("p", sold) == "D"


def test_dates_a_whole_number_of_weeks_apart_are_weekly_on_their_weekday() -> None:
    assert detect_frequency("p", FRIDAYS) == "W-FRI"
    missing_weeks = [d for i, d in enumerate(FRIDAYS) if i not in (3, 7, 8)]
    assert detect_frequency("p", missing_weeks) == "W-FRI"
    assert detect_frequency("p", [d + dt.timedelta(days=2) for d in FRIDAYS]) == "W-SUN"


def test_month_starts_and_month_ends_are_told_apart() -> None:
    starts = month_starts(14)
    assert detect_frequency("p", starts) == "MS"
    ends = [d - dt.timedelta(days=1) for d in starts[1:]]
    assert detect_frequency("p", ends) == "ME"


def test_a_single_date_is_daily() -> None:
    assert detect_frequency("p", [dt.date(2024, 3, 5)]) == "D"


def test_a_stray_weekday_among_weekly_dates_names_the_date_and_the_fix() -> None:
    tuesday = dt.date(2024, 1, 23)
    with pytest.raises(FrequencyError) as refused:
        detect_frequency("shop-7", [*FRIDAYS, tuesday])
    message = str(refused.value)
    assert "'shop-7'" in message
    assert "weekly on FRI (W-FRI), but 2024-01-23 is not" in message
    assert "--freq (HTTP: freq=) W-FRI" in message


def test_monthly_dates_on_the_fifteenth_are_irregular() -> None:
    fifteenths = [d.replace(day=15) for d in month_starts(10)]
    with pytest.raises(FrequencyError, match=r"neither daily .* nor monthly") as refused:
        detect_frequency("p", fifteenths)
    assert "--freq (HTTP: freq=) W-SUN or MS, or D" in str(refused.value)


def test_month_starts_with_stray_days_name_the_strays() -> None:
    with pytest.raises(FrequencyError, match=r"monthly on the 1st \(MS\), but 2022-03-02"):
        detect_frequency("p", [*month_starts(10), dt.date(2022, 3, 2)])


@pytest.mark.parametrize("freq", FREQUENCIES)
def test_periods_are_numbered_consecutively_and_dated_as_the_frequency_dates_them(
    freq: str,
) -> None:
    start = period_index(dt.date(2023, 12, 20), freq)
    dates = [period_date(start + i, freq) for i in range(60)]
    assert all(fits(d, freq) for d in dates)
    assert [period_index(d, freq) for d in dates] == list(range(start, start + 60))
    assert dates == sorted(set(dates))


def test_a_day_belongs_to_the_week_ending_on_the_anchor_weekday() -> None:
    saturday, friday = dt.date(2024, 1, 6), dt.date(2024, 1, 12)
    assert period_index(saturday, "W-FRI") == period_index(friday, "W-FRI")
    assert period_date(period_index(saturday, "W-FRI"), "W-FRI") == friday


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("W", "name the weekday"),
        ("monthly", r"MS .* or ME"),
        ("X", "use one of D, W-MON"),
        ("W-FRIDAY", "not a frequency"),
    ],
)
def test_a_frequency_that_is_not_one_is_refused_saying_what_is(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_frequency(text)
    assert parse_frequency(" w-fri ") == "W-FRI"


def test_resampling_sums_each_products_rows_per_period_and_keeps_the_first_line() -> None:
    rows = [("a", d, 1.0) for d in DAYS[:14]] + [("b", dt.date(2024, 1, 3), 5.0)]
    parsed = ParsedSales(rows, list(range(2, 2 + len(rows))), "line")
    weekly = resample(parsed, "W-SUN")
    # 2024-01-01 is a Monday: weeks end on the 7th and the 14th
    assert weekly.rows == [
        ("a", dt.date(2024, 1, 7), 7.0),
        ("a", dt.date(2024, 1, 14), 7.0),
        ("b", dt.date(2024, 1, 7), 5.0),
    ]
    assert weekly.lines == [2, 9, 16]
    monthly = resample(parsed, "ME")
    assert monthly.rows == [("a", dt.date(2024, 1, 31), 14.0), ("b", dt.date(2024, 1, 31), 5.0)]
    assert resample(parsed, "D") is parsed


@pytest.fixture
def store(database_url: str) -> Iterator[SalesStore]:
    database = Database(database_url)
    yield SalesStore(database)
    database.dispose()


def test_the_store_keeps_a_new_products_frequency_and_refuses_dates_off_it(
    store: SalesStore,
) -> None:
    store.ingest(ParsedSales([("w", d, 1.0) for d in FRIDAYS] + [("d", DAYS[0], 2.0)]))
    assert {p.product_id: p.frequency for p in store.list_products()} == {"w": "W-FRI", "d": "D"}
    off_weekday = ParsedSales([("d", DAYS[1], 1.0), ("w", dt.date(2024, 3, 20), 1.0)])
    with pytest.raises(FrequencyError, match=r"'w' is stored as weekly on FRI .* 2024-03-20"):
        store.ingest(off_weekday)
    assert len(store.get_history("w")) == len(FRIDAYS)
    assert [p.date for p in store.get_history("d")] == [DAYS[0]]  # the whole upload refused
    assert (store.get_data_version("w"), store.get_data_version("d")) == (1, 1)
    with pytest.raises(FrequencyError, match="freq MS cannot change that"):
        store.ingest(ParsedSales([("w", dt.date(2024, 4, 1), 1.0)]), freq="MS")
    store.ingest(ParsedSales([("m", dt.date(2024, 4, 1), 1.0)]), freq="MS")
    assert store.get_frequency("m") == "MS"
