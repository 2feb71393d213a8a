"""Holdout backtest metrics: MASE of a model and of the seasonal-naive forecast on one holdout.

MASE (Hyndman & Koehler, 2006) divides a forecast's mean absolute error by the
in-sample mean absolute error of the seasonal-naive forecast (lag 7 for daily
sales). Below 1 beats "same day last week" on average over the training data;
`mase_seasonal_naive` shows how that naive forecast itself did on the holdout,
so the two numbers can be compared directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

SEASON_DAYS = 7


@dataclass(frozen=True)
class BacktestMetrics:
    """Scores on the last `holdout_days` of history, the model fit without them."""

    holdout_start: str
    holdout_end: str
    holdout_days: int
    mae: float
    mae_seasonal_naive: float | None
    mase: float | None  # None when the training data has no seasonal variation
    mase_seasonal_naive: float | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def split_holdout(days: Sequence[dt.date], holdout_days: int) -> int:
    """Index of the first holdout day: the holdout is the last `holdout_days` calendar days."""
    cutoff = days[-1] - dt.timedelta(days=holdout_days - 1)
    return next(i for i, day in enumerate(days) if day >= cutoff)


def seasonal_naive_scale(series: Mapping[dt.date, float]) -> float | None:
    """In-sample MAE of the lag-7 naive forecast, over the pairs of days both stored."""
    diffs = [
        abs(value - series[day - dt.timedelta(days=SEASON_DAYS)])
        for day, value in series.items()
        if day - dt.timedelta(days=SEASON_DAYS) in series
    ]
    if not diffs:
        return None
    scale = sum(diffs) / len(diffs)
    return scale if scale > 0 else None


def seasonal_naive_forecast(train: Mapping[dt.date, float], day: dt.date) -> float | None:
    """The value on the latest stored training day that falls on the same weekday as `day`."""
    last = max(train)
    # the fewest whole weeks back that land on or before the last training day
    weeks_back = ((day - last).days - 1) // SEASON_DAYS + 1
    candidate = day - dt.timedelta(days=SEASON_DAYS * weeks_back)
    while candidate >= min(train):
        if candidate in train:
            return train[candidate]
        candidate -= dt.timedelta(days=SEASON_DAYS)
    return None


def score_holdout(
    train: Mapping[dt.date, float],
    actual: Mapping[dt.date, float],
    predicted: Mapping[dt.date, float],
) -> BacktestMetrics:
    """Compare the model's `predicted` values and the seasonal-naive ones with `actual`."""
    holdout = sorted(actual)
    mae = sum(abs(actual[d] - predicted[d]) for d in holdout) / len(holdout)
    naive_errors = []
    for day in holdout:
        guess = seasonal_naive_forecast(train, day)
        if guess is not None:
            naive_errors.append(abs(actual[day] - guess))
    mae_naive = sum(naive_errors) / len(naive_errors) if naive_errors else None
    scale = seasonal_naive_scale(train)
    return BacktestMetrics(
        holdout_start=holdout[0].isoformat(),
        holdout_end=holdout[-1].isoformat(),
        holdout_days=len(holdout),
        mae=mae,
        mae_seasonal_naive=mae_naive,
        mase=mae / scale if scale else None,
        mase_seasonal_naive=mae_naive / scale if scale and mae_naive is not None else None,
    )
