"""Forecast points from a fitted model, as plain data ready for JSON and for the cache."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import pandas as pd

from salescast.forecasting.adjustment import PointAdjustment
from salescast.forecasting.calibration import IntervalCalibration
from salescast.forecasting.errors import HorizonError
from salescast.forecasting.sampling import forecast_seed, predict_with_interval
from salescast.store.frequency import PeriodUnit, unit_of

if TYPE_CHECKING:
    from prophet import Prophet

MAX_HORIZON_DAYS = 730
MAX_HORIZON: dict[PeriodUnit, int] = {"day": MAX_HORIZON_DAYS, "week": 104, "month": 24}
"""The longest horizon per period unit: about two years in each."""


class ForecastPoint(TypedDict):
    ds: str
    yhat: float
    yhat_lower: float
    yhat_upper: float


class Forecast(TypedDict):
    product_id: str
    model_version: int
    frequency: str
    horizon: int
    interval: float
    generated_at: str
    points: list[ForecastPoint]


def predict_points(
    model: Prophet,
    *,
    horizon: int,
    interval: float,
    seed: int,
    freq: str = "D",
    calibration: IntervalCalibration | None = None,
    adjustment: PointAdjustment | None = None,
) -> list[ForecastPoint]:
    """`horizon` points after the model's last training date, one per period of `freq`
    (the product's frequency: on its weekday, or its months' 1st or last day), `interval` wide
    (Prophet's band, scaled by the version's `calibration` when it has one), moved with the
    point by the version's `adjustment` when it has one.

    The interval is drawn from a generator seeded with `seed` alone (see
    `salescast.forecasting.sampling`): the same model and arguments give the
    same points in any thread or process. The model may be shared (an
    in-process cache holds one instance for every request) and is not mutated.
    Raises HorizonError past the frequency's `MAX_HORIZON`.
    """
    check_horizon(horizon, freq)
    if not 0 < interval < 1:
        raise ValueError(f"interval must be between 0 and 1 (exclusive), got {interval}")
    future = model.make_future_dataframe(periods=horizon, freq=freq, include_history=False)
    frame = predict_with_interval(
        model,
        future,
        interval=interval,
        rng=np.random.default_rng(seed),
        calibration=calibration,
        adjustment=adjustment,
    )
    return [
        ForecastPoint(
            ds=ds.date().isoformat(), yhat=float(y), yhat_lower=float(lo), yhat_upper=float(hi)
        )
        for ds, y, lo, hi in zip(
            pd.to_datetime(frame["ds"]),
            frame["yhat"],
            frame["yhat_lower"],
            frame["yhat_upper"],
            strict=True,
        )
    ]


def check_horizon(horizon: int, freq: str) -> None:
    """Raise HorizonError unless 1 <= horizon <= the maximum of `freq`'s unit."""
    unit = unit_of(freq)
    if not 1 <= horizon <= MAX_HORIZON[unit]:
        raise HorizonError(horizon, maximum=MAX_HORIZON[unit], unit=unit)


def make_forecast(
    product_id: str,
    model_version: int,
    model: Prophet,
    *,
    horizon: int,
    interval: float,
    trained_at: dt.datetime,
    freq: str = "D",
    calibration: IntervalCalibration | None = None,
    adjustment: PointAdjustment | None = None,
) -> Forecast:
    """The forecast document the API returns and the cache stores.

    A function of its arguments only, byte for byte, so an ETag naming the
    product, version, horizon and interval names one body: the draws are
    seeded by those four (`forecast_seed`), and `generated_at` is the model
    version's `trained_at` time (when it was stored), not the time of this
    computation, which would differ between a cache fill and a recomputation. The
    `calibration` and the `adjustment` are the version's own (stored with it), so they
    name nothing new.
    A calibrated version draws one set of futures per horizon, seeded with its
    reference width instead of `interval`: every width's band is then scaled from
    the same reference band, so a wider band holds a narrower one on every date
    (`salescast.forecasting.calibration`). Other versions' draws are as before.
    """
    drawn_for = interval if calibration is None else calibration.reference
    seed = forecast_seed(product_id, model_version, horizon, drawn_for)
    return Forecast(
        product_id=product_id,
        model_version=model_version,
        frequency=freq,
        horizon=horizon,
        interval=interval,
        generated_at=trained_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        points=predict_points(
            model,
            horizon=horizon,
            interval=interval,
            seed=seed,
            freq=freq,
            calibration=calibration,
            adjustment=adjustment,
        ),
    )
