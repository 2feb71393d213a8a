"""Holdout backtest metrics: MASE of a model and of the seasonal-naive forecast on one holdout.

Everything counts in the product's periods (days, weeks or months; see
`salescast.store.frequency`), numbered so that consecutive periods differ by
one. With the season m (7 days, 52 weeks, 12 months), MASE follows Hyndman &
Koehler (2006): the forecast's mean absolute error on the holdout divided by
the in-sample MAE of the seasonal-naive forecast on the training part, the
mean of |y_t - y_(t-m)| over the periods t whose period t - m is stored too.
On a series without gaps that is the textbook mean over t = m+1 .. n; a gap
(a day the store has no row for) drops the pairs it is part of, and nothing
is filled in. Below 1 beats "same period last season" on average over the
training data; `mase_seasonal_naive` scores that naive forecast itself on the
holdout with the same scale, so the two numbers compare directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from salescast.store.frequency import period_date, period_index, season_of, unit_of


@dataclass(frozen=True)
class BacktestMetrics:
    """Scores on the last `holdout_periods` periods of history, the model fit without them.

    `holdout_periods` counts the periods the holdout spans (28 days, 13 weeks,
    6 months by default), `holdout_points` the ones stored; `holdout_days` is
    the calendar days those periods cover (kept from before frequencies).
    """

    holdout_start: str
    holdout_end: str
    holdout_days: int
    mae: float
    mae_seasonal_naive: float | None
    mase: float | None  # None when the training data has no seasonal variation
    mase_seasonal_naive: float | None
    frequency: str = "D"
    season: int = 7
    holdout_periods: int = 0
    holdout_points: int = 0
    # The share of the holdout's actuals inside the band a forecast `interval` wide
    # serves (Prophet's band scaled by what the earlier windows taught, see
    # salescast.forecasting.calibration; None where no earlier window was there to
    # learn from), and inside Prophet's own band. None without an interval.
    interval: float | None = None
    coverage: float | None = None
    coverage_prophet: float | None = None
    # The correction of Prophet's points that forecast this holdout, chosen on the
    # holdout before (salescast.forecasting.adjustment); "prophet" for Prophet's points
    # (the first window, or selection off), None in metrics stored before it existed.
    candidate: str | None = None
    # The rolling-origin backtest: every window's scores, oldest first (the last one
    # is this holdout), and their means. Empty for a single window's scores.
    windows: tuple[dict[str, object], ...] = ()
    mean_over_windows: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def window_scores(self) -> dict[str, object]:
        """This holdout's own scores, as one entry of a rolling backtest's `windows`."""
        return {name: getattr(self, name) for name in WINDOW_FIELDS}


WINDOW_FIELDS = (
    "holdout_start",
    "holdout_end",
    "holdout_points",
    "mae",
    "mae_seasonal_naive",
    "mase",
    "mase_seasonal_naive",
    "coverage",
    "coverage_prophet",
    "candidate",
)
"""What a rolling backtest keeps of each window."""

AVERAGED_FIELDS = ("mae", "mae_seasonal_naive", "mase", "mase_seasonal_naive", "coverage")


def rolling_backtest(windows: Sequence[BacktestMetrics]) -> BacktestMetrics:
    """The stored scores of a rolling-origin backtest over `windows` (oldest first).

    The top-level fields stay the last window's, the holdout a single-window
    backtest scores, so they keep their meaning; `windows` has each window's
    scores and `mean_over_windows` their means (each over the windows where it
    is defined, None where none is), with `windows` the number of windows.
    """
    means: dict[str, object] = {"windows": len(windows)}
    for name in AVERAGED_FIELDS:
        values = [getattr(w, name) for w in windows if getattr(w, name) is not None]
        means[name] = sum(values) / len(values) if values else None
    return replace(
        windows[-1],
        windows=tuple(w.window_scores() for w in windows),
        mean_over_windows=means,
    )


def window_cuts(
    days: Sequence[dt.date], holdout: int, count: int, min_training_points: int, freq: str = "D"
) -> list[tuple[int, int]]:
    """The backtest windows of a series, oldest first, as (first index, end index) into `days`.

    The last window is the last `holdout` periods (`split_holdout`); each earlier
    one the `holdout` periods before the next. At most `count` windows, and only
    those whose training part (every date before the window) has at least
    `min_training_points` dates and whose window holds a date: a short history
    gets fewer windows, never less than the last one.
    """
    last = period_index(days[-1], freq)
    cuts: list[tuple[int, int]] = []
    end = len(days)
    for back in range(count):
        first_period = last - holdout * (back + 1) + 1
        start = next((i for i, day in enumerate(days) if period_index(day, freq) >= first_period))
        if back and (start < min_training_points or start == end):
            break
        cuts.append((start, end))
        end = start
    return cuts[::-1]


def split_holdout(days: Sequence[dt.date], holdout: int, freq: str = "D") -> int:
    """Index of the first holdout date: the holdout is the last `holdout` periods of `freq`."""
    cutoff = period_index(days[-1], freq) - holdout + 1
    return next(i for i, day in enumerate(days) if period_index(day, freq) >= cutoff)


def by_period(series: Mapping[dt.date, float], freq: str) -> dict[int, float]:
    """The series keyed by period number."""
    return {period_index(day, freq): value for day, value in series.items()}


def seasonal_naive_scale(series: Mapping[int, float], season: int) -> float | None:
    """In-sample MAE of the seasonal-naive forecast: mean |y_t - y_(t-season)| over the
    periods t for which both are stored; None when no pair or no variation."""
    diffs = [abs(value - series[t - season]) for t, value in series.items() if t - season in series]
    if not diffs:
        return None
    scale = sum(diffs) / len(diffs)
    return scale if scale > 0 else None


def seasonal_naive_forecast(train: Mapping[int, float], period: int, season: int) -> float | None:
    """The seasonal-naive forecast of `period`: the value of the latest training period
    whole seasons back (y_(T+h-m*k), the fewest k landing in the training part); a
    period not stored falls back one more season."""
    last = max(train)
    seasons_back = (period - last - 1) // season + 1
    candidate = period - season * seasons_back
    first = min(train)
    while candidate >= first:
        if candidate in train:
            return train[candidate]
        candidate -= season
    return None


def score_holdout(
    train: Mapping[dt.date, float],
    actual: Mapping[dt.date, float],
    predicted: Mapping[dt.date, float],
    *,
    freq: str = "D",
    holdout: int | None = None,
) -> BacktestMetrics:
    """Compare the model's `predicted` values and the seasonal-naive ones with `actual`.

    `holdout` is the number of periods the holdout spans (the stored points in
    `actual` when not given).
    """
    season = season_of(freq)
    holdout_dates = sorted(actual)
    mae = sum(abs(actual[d] - predicted[d]) for d in holdout_dates) / len(holdout_dates)
    periods = by_period(train, freq)
    naive_errors = []
    for day in holdout_dates:
        guess = seasonal_naive_forecast(periods, period_index(day, freq), season)
        if guess is not None:
            naive_errors.append(abs(actual[day] - guess))
    mae_naive = sum(naive_errors) / len(naive_errors) if naive_errors else None
    scale = seasonal_naive_scale(periods, season)
    last = period_index(holdout_dates[-1], freq)
    spanned = holdout if holdout is not None else len(holdout_dates)
    return BacktestMetrics(
        holdout_start=holdout_dates[0].isoformat(),
        holdout_end=holdout_dates[-1].isoformat(),
        holdout_days=_calendar_days(last - spanned + 1, last, freq),
        mae=mae,
        mae_seasonal_naive=mae_naive,
        mase=mae / scale if scale else None,
        mase_seasonal_naive=mae_naive / scale if scale and mae_naive is not None else None,
        frequency=freq,
        season=season,
        holdout_periods=spanned,
        holdout_points=len(holdout_dates),
    )


def _calendar_days(first: int, last: int, freq: str) -> int:
    """Calendar days covered by periods `first` .. `last` of `freq`."""
    if unit_of(freq) == "day":
        return last - first + 1
    if unit_of(freq) == "week":
        return 7 * (last - first + 1)
    start = period_date(first, "MS")
    end = period_date(last, "ME")
    return (end - start).days + 1
