"""The per-product correction of Prophet's points: its arithmetic, its storage, how a
version serves it, and that the choice is made on earlier windows only.

The arithmetic is checked on series built so that the right answer is known;
training and serving on a real M5 series.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from salescast.forecasting.adjustment import (
    MAX_TREND_RATIO,
    PROPHET,
    Candidate,
    FitOutput,
    PointAdjustment,
    adjustment_for,
    adjustment_or_unscaled,
    candidates,
    choose,
    errors,
)
from salescast.forecasting.batch import version_metrics
from salescast.forecasting.prediction import make_forecast, predict_points
from salescast.forecasting.training import TrainedModel, TrainingParams, train_model
from tests.conftest import m5_department

PARAMS = TrainingParams(uncertainty_samples=300)
PRODUCT = "CA_1-HOUSEHOLD_2"  # chooses a correction with every part: scale, shift, weekdays
TRAINED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def series() -> tuple[list[dt.date], list[float]]:
    return m5_department("CA_1", "HOUSEHOLD_2")


@pytest.fixture(scope="module")
def trained(series: tuple[list[dt.date], list[float]]) -> TrainedModel:
    return train_model(PRODUCT, *series, PARAMS)


def fit_output(residuals: np.ndarray, *, ahead: int = 14, trend: float = 100.0) -> FitOutput:
    """A fit whose points are a flat `trend` plus a weekly wave, with actuals `residuals`
    above its points on the tail; dates from a Monday."""
    days = len(residuals) + ahead
    weekdays = np.arange(days) % 7
    wave = 10.0 * np.sin(2 * np.pi * weekdays / 7)
    yhat = trend + wave
    return FitOutput(
        actual=yhat[: len(residuals)] + residuals,
        yhat=yhat,
        trend=np.full(days, trend),
        weekdays=weekdays,
        mean_trend=trend,
    )


def test_daily_products_choose_among_eight_candidates_others_keep_prophets_points() -> None:
    daily = candidates("D")
    assert daily[0] == PROPHET
    assert len(set(daily)) == 8
    assert [c.name for c in daily] == [
        "prophet",
        "prophet + level 28",
        "prophet + level 56",
        "prophet + level 28 + weekday",
        "seasonality x trend",
        "seasonality x trend + level 28",
        "seasonality x trend + level 56",
        "seasonality x trend + level 28 + weekday",
    ]
    assert candidates("W-FRI") == candidates("MS") == (PROPHET,)
    # a multiplicative fit is scaled by its trend already: no scaled candidates
    assert candidates("D", "multiplicative") == daily[:4]


def test_a_level_candidate_adds_the_mean_residual_of_its_last_periods() -> None:
    residuals = np.concatenate([np.full(28, 5.0), np.full(28, 1.0)])  # older 5, recent 1
    fit = fit_output(residuals)
    level28 = adjustment_for(Candidate(False, "level 28"), fit)
    level56 = adjustment_for(Candidate(False, "level 56"), fit)
    assert level28 is not None
    assert level56 is not None
    assert level28.shift == pytest.approx(1.0)
    assert level56.shift == pytest.approx(3.0)
    ahead = slice(fit.tail, None)
    points = level28.apply(fit.yhat[ahead], fit.trend[ahead], fit.weekdays[ahead])
    assert points == pytest.approx(fit.yhat[ahead] + 1.0)
    as_fitted = adjustment_for(PROPHET, fit)
    assert as_fitted is not None
    assert as_fitted.is_identity


def test_a_weekday_offset_is_kept_when_clear_and_shrunk_to_nothing_when_noise() -> None:
    rng = np.random.default_rng(1)
    weekdays = np.arange(56) % 7
    clear = np.where(weekdays == 2, 12.0, 0.0) + rng.normal(0, 0.5, 56)  # Wednesdays +12
    fit = fit_output(clear)
    adjustment = adjustment_for(Candidate(False, "level 28 + weekday"), fit)
    assert adjustment is not None
    shift = float(clear[-28:].mean())
    assert adjustment.shift == pytest.approx(shift)
    recent = clear - shift
    wednesday = recent[weekdays == 2]
    se2 = wednesday.var(ddof=1) / len(wednesday)
    shrink = 1 - 2 * se2 / wednesday.mean() ** 2
    assert adjustment.weekday[2] == pytest.approx(shrink * wednesday.mean())
    assert 0.95 < shrink < 1
    noisy = rng.normal(0, 5, 56)
    noise = adjustment_for(Candidate(False, "level 28 + weekday"), fit_output(noisy))
    assert noise is not None
    recent = noisy - noisy[-28:].mean()
    zeros = 0
    for day, offset in enumerate(noise.weekday):
        values = recent[weekdays == day]
        mean, se2 = values.mean(), values.var(ddof=1) / len(values)
        assert abs(offset) <= abs(mean)  # shrunk toward 0, never past it
        if mean * mean <= 2 * se2:  # a weekday whose mean is within its noise adds nothing
            assert offset == 0.0
            zeros += 1
    assert zeros >= 2


def test_a_seasonality_scaled_by_the_trend_grows_with_it() -> None:
    fit = fit_output(np.zeros(56))
    doubled = dataclasses.replace(fit, trend=fit.trend * 2, yhat=fit.trend * 2 + (fit.yhat - 100))
    adjustment = adjustment_for(Candidate(True), fit)
    assert adjustment is not None
    assert adjustment.mean_trend == 100.0
    # where the trend is twice its training mean, the seasonal wave is twice as wide
    points = adjustment.apply(doubled.yhat, doubled.trend, doubled.weekdays)
    assert points - 200 == pytest.approx(2 * (fit.yhat - 100))
    # a trend through zero floors the ratio at 0: the wave flattens, it does not flip
    negative = adjustment.apply(fit.yhat - 150, fit.trend - 150, fit.weekdays)
    assert negative == pytest.approx(fit.trend - 150)
    flat = dataclasses.replace(fit, mean_trend=0.0)
    assert adjustment_for(Candidate(True), flat) is None
    assert Candidate(True) not in errors(flat, np.zeros(14), candidates("D"))
    # where the scaled form does not apply, a candidate keeps its level term alone
    fallback = adjustment_or_unscaled(Candidate(True, "level 28"), flat)
    assert fallback.candidate == "prophet + level 28"
    assert fallback.mean_trend is None
    # a runaway trend multiplies the seasonal terms at most MAX_TREND_RATIO times
    runaway = adjustment.apply(fit.yhat + 1e6, fit.trend + 1e6, fit.weekdays)
    assert runaway - (fit.trend + 1e6) == pytest.approx(MAX_TREND_RATIO * (fit.yhat - 100))


def test_a_weekday_offset_lands_on_its_weekday_in_a_forecast(trained: TrainedModel) -> None:
    """Training counts weekdays with `date.weekday()`, serving with pandas: a Monday
    offset must move Mondays only (2016-04-25, the day after the series ends, is one)."""
    monday = PointAdjustment("prophet + level 28 + weekday", None, 0.0, (5.0, 0, 0, 0, 0, 0, 0))
    plain = predict_points(trained.model, horizon=14, interval=0.8, seed=2)
    moved = predict_points(trained.model, horizon=14, interval=0.8, seed=2, adjustment=monday)
    for raw, served in zip(plain, moved, strict=True):
        is_monday = dt.date.fromisoformat(raw["ds"]).weekday() == 0
        assert served["yhat"] == pytest.approx(raw["yhat"] + (5.0 if is_monday else 0.0))
        assert served["yhat_lower"] == pytest.approx(raw["yhat_lower"] + (5.0 if is_monday else 0))
    assert plain[0]["ds"] == "2016-04-25"


def test_the_choice_is_the_smallest_error_the_first_among_equals() -> None:
    order = candidates("D")
    assert choose({order[3]: 2.0, order[5]: 1.0, order[0]: 3.0}, order) == order[5]
    assert choose({order[6]: 1.0, order[2]: 1.0}, order) == order[2]
    assert choose({order[1]: math.nan}, order) == PROPHET
    assert choose({}, order) == PROPHET


def test_a_stored_adjustment_reads_back_and_bad_numbers_are_refused() -> None:
    good = PointAdjustment("seasonality x trend + level 28 + weekday", 120.5, -3.0, (1,) * 7)
    assert PointAdjustment.from_stored(good.to_dict()) == good
    plain = PointAdjustment("prophet")
    assert PointAdjustment.from_stored(plain.to_dict()) == plain
    stored = good.to_dict()
    for bad in (
        None,
        "x",
        {},
        {**stored, "shift": float("nan")},
        {**stored, "shift": "a lot"},
        {**stored, "mean_trend": 0.0},
        {**stored, "mean_trend": -1.0},
        {**stored, "weekday": [1.0] * 6},
        {**stored, "weekday": [1.0] * 6 + [float("inf")]},
        {key: value for key, value in stored.items() if key != "shift"},
    ):
        assert PointAdjustment.from_stored(bad) is None  # type: ignore[arg-type]


def test_a_version_stores_its_choice_and_every_window_names_its_candidate(
    trained: TrainedModel,
) -> None:
    windows = trained.metrics.windows
    assert windows[0]["candidate"] == "prophet"  # no window before it to choose on
    names = {c.name for c in candidates("D")}
    assert {w["candidate"] for w in windows} <= names
    assert trained.metrics.candidate == windows[-1]["candidate"]
    assert trained.adjustment is not None
    assert trained.adjustment.candidate in names
    stored = version_metrics(trained)["point_adjustment"]
    assert PointAdjustment.from_stored(stored) == trained.adjustment  # type: ignore[arg-type]


def test_the_versions_correction_is_the_best_on_its_last_window(
    trained: TrainedModel, series: tuple[list[dt.date], list[float]]
) -> None:
    """Trained again with one window less: its last window is this version's second to
    last, and the candidate this version's last window names is the one that did best
    there (the forecast of a window is chosen on the window before it)."""
    days, values = series
    shorter = train_model(PRODUCT, days[:-28], values[:-28], PARAMS)
    assert shorter.adjustment is not None
    assert shorter.metrics.windows[-1] == {
        **trained.metrics.windows[-2],
        "coverage": shorter.metrics.windows[-1]["coverage"],  # learnt from one window fewer
    }
    assert trained.metrics.windows[-1]["candidate"] == shorter.adjustment.candidate
    # and this version keeps the one that did best on its own last window
    assert trained.adjustment is not None
    assert trained.adjustment.candidate != "prophet"


def test_a_forecast_moves_point_and_band_together_by_the_versions_correction(
    trained: TrainedModel,
) -> None:
    assert trained.adjustment is not None
    assert trained.adjustment.mean_trend is not None
    assert trained.adjustment.shift != 0.0
    assert any(trained.adjustment.weekday)
    plain = predict_points(trained.model, horizon=21, interval=0.8, seed=4)
    corrected = predict_points(
        trained.model, horizon=21, interval=0.8, seed=4, adjustment=trained.adjustment
    )
    dates = pd.to_datetime([p["ds"] for p in plain])
    trend = trained.model.predict(pd.DataFrame({"ds": dates}))["trend"].to_numpy()
    expected = trained.adjustment.apply([p["yhat"] for p in plain], trend, dates.day_of_week)
    for raw, served, point in zip(plain, corrected, expected, strict=True):
        assert served["yhat"] == pytest.approx(point)
        assert served["yhat"] != raw["yhat"]
        for bound in ("yhat_lower", "yhat_upper"):
            assert served[bound] - served["yhat"] == pytest.approx(raw[bound] - raw["yhat"])
    # Prophet's points exactly, byte for byte, without a correction or with the identity
    identity = predict_points(
        trained.model, horizon=21, interval=0.8, seed=4, adjustment=PointAdjustment("prophet")
    )
    assert identity == plain
    # the forecast document a version serves carries the correction too
    body = make_forecast(
        PRODUCT,
        3,
        trained.model,
        horizon=21,
        interval=0.8,
        trained_at=TRAINED_AT,
        calibration=trained.calibration,
        adjustment=trained.adjustment,
    )
    assert [p["yhat"] for p in body["points"]] == pytest.approx(list(expected))


def test_selection_off_keeps_prophets_points_everywhere(
    series: tuple[list[dt.date], list[float]], trained: TrainedModel
) -> None:
    days, values = series
    off = train_model(PRODUCT, days, values, dataclasses.replace(PARAMS, select_candidates=False))
    assert off.adjustment is None
    assert "point_adjustment" not in version_metrics(off)
    assert {w["candidate"] for w in off.metrics.windows} == {"prophet"}
    # the same fits: the first window (Prophet's points in both) scores the same
    assert off.metrics.windows[0] == trained.metrics.windows[0]


def test_a_multiplicative_fit_never_takes_a_scaled_candidate(
    series: tuple[list[dt.date], list[float]],
) -> None:
    days, values = series
    params = dataclasses.replace(PARAMS, seasonality_mode="multiplicative")
    trained = train_model(PRODUCT, days[-400:], values[-400:], params)
    assert trained.adjustment is not None
    used = [str(w["candidate"]) for w in trained.metrics.windows] + [trained.adjustment.candidate]
    assert not any(name.startswith("seasonality x trend") for name in used)
    assert trained.adjustment.mean_trend is None
