"""The rolling-origin backtest and the calibrated forecast bands, on real M5 series.

Each window's scores are checked against an independent fit and scoring of
that window, and the calibration against its definition (the conformal
quantile of the window errors in half-widths), not against stored numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from salescast.forecasting.adjustment import (
    TAIL,
    FitOutput,
    PointAdjustment,
    adjustment_for,
    candidates,
)
from salescast.forecasting.backtest import score_holdout, window_cuts
from salescast.forecasting.calibration import (
    LEVELS,
    IntervalCalibration,
    WindowBands,
    calibrate,
)
from salescast.forecasting.prediction import make_forecast, predict_points
from salescast.forecasting.sampling import backtest_futures, forecast_seed
from salescast.forecasting.training import TrainedModel, TrainingParams, fit_prophet, train_model
from salescast.service import SalescastService
from tests.conftest import m5_department

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

PARAMS = TrainingParams(uncertainty_samples=300)
PRODUCT = "CA_1-HOBBIES_1"


@pytest.fixture(scope="module")
def series() -> tuple[list[dt.date], list[float]]:
    """One M5 store x department, with its real gaps (the closed Christmas days)."""
    return m5_department("CA_1", "HOBBIES_1")


@pytest.fixture(scope="module")
def trained(series: tuple[list[dt.date], list[float]]) -> TrainedModel:
    days, values = series
    return train_model(PRODUCT, days, values, PARAMS)


def independent_fit(
    days: list[dt.date], values: list[float], start: int, end: int
) -> tuple[FitOutput, np.ndarray]:
    """What the candidates read of the fit on `days[:start]`, from Prophet's own `predict`
    (not salescast's arithmetic), and the window's actuals."""
    model = fit_prophet(days[:start], values[:start], PARAMS, uncertainty_samples=0)
    first = max(0, start - TAIL)
    frame = model.predict(pd.DataFrame({"ds": pd.to_datetime(days[first:end])}))
    history = model.predict(pd.DataFrame({"ds": pd.to_datetime(days[:start])}))
    fit = FitOutput(
        actual=np.asarray(values[first:start]),
        yhat=frame["yhat"].to_numpy(),
        trend=frame["trend"].to_numpy(),
        weekdays=np.array([d.weekday() for d in days[first:end]]),
        mean_trend=float(history["trend"].mean()),
    )
    return fit, np.asarray(values[start:end])


def served_points(fit: FitOutput, candidate_name: str) -> np.ndarray:
    """The window's points as `candidate_name` corrects them."""
    candidate = next(c for c in candidates("D") if c.name == candidate_name)
    adjustment = adjustment_for(candidate, fit)
    assert adjustment is not None
    ahead = slice(fit.tail, None)
    return adjustment.apply(fit.yhat[ahead], fit.trend[ahead], fit.weekdays[ahead])


def window_span(days: list[dt.date], window: dict[str, object]) -> tuple[int, int]:
    start = days.index(dt.date.fromisoformat(str(window["holdout_start"])))
    return start, days.index(dt.date.fromisoformat(str(window["holdout_end"]))) + 1


def test_four_consecutive_windows_end_at_the_last_date(
    trained: TrainedModel, series: tuple[list[dt.date], list[float]]
) -> None:
    days, _ = series
    windows = trained.metrics.windows
    assert len(windows) == PARAMS.backtest_windows == 4
    starts = [dt.date.fromisoformat(str(w["holdout_start"])) for w in windows]
    ends = [dt.date.fromisoformat(str(w["holdout_end"])) for w in windows]
    assert ends[-1] == days[-1]
    for start, end in zip(starts, ends, strict=True):
        assert (end - start).days == 27  # 28 days each
    for end, next_start in zip(ends, starts[1:], strict=False):
        assert next_start - end == dt.timedelta(days=1)
    # the top level stays the last window's scores, as a single-window backtest has them
    last = {name: getattr(trained.metrics, name) for name in windows[-1]}
    assert last == windows[-1]


def test_each_window_is_scored_on_a_fit_that_never_saw_it(
    trained: TrainedModel, series: tuple[list[dt.date], list[float]]
) -> None:
    """Each window forecast by the candidate named, that candidate the best on the window
    before (the first window: Prophet's points), each fit and scoring redone here."""
    days, values = series
    previous_errors: dict[str, float] | None = None
    for window in trained.metrics.windows:
        start, end = window_span(days, window)
        fit, actual = independent_fit(days, values, start, end)
        if previous_errors is None:
            assert window["candidate"] == "prophet"
        else:
            assert window["candidate"] == min(previous_errors, key=previous_errors.__getitem__)
        points = served_points(fit, str(window["candidate"]))
        predicted = dict(zip(days[start:end], points, strict=True))
        previous_errors = {
            c.name: float(np.mean(np.abs(actual - served_points(fit, c.name))))
            for c in candidates("D")
        }
        again = score_holdout(
            dict(zip(days[:start], values[:start], strict=True)),
            dict(zip(days[start:end], values[start:end], strict=True)),
            predicted,
        )
        assert window["mase"] == pytest.approx(again.mase, rel=1e-9)
        assert window["mase_seasonal_naive"] == pytest.approx(again.mase_seasonal_naive, rel=1e-9)


def test_the_means_are_over_the_windows_where_each_score_is_defined(trained: TrainedModel) -> None:
    windows, means = trained.metrics.windows, trained.metrics.mean_over_windows
    assert means is not None
    assert means["windows"] == 4
    for name in ("mae", "mase", "mase_seasonal_naive"):
        assert means[name] == pytest.approx(np.mean([float(w[name]) for w in windows]))  # type: ignore[arg-type]
    # the oldest window has no earlier one to learn the band's width from
    assert windows[0]["coverage"] is None
    served = [float(w["coverage"]) for w in windows[1:]]  # type: ignore[arg-type]
    assert means["coverage"] == pytest.approx(np.mean(served))


def test_each_windows_band_is_scaled_by_what_the_earlier_windows_taught_only(
    trained: TrainedModel, series: tuple[list[dt.date], list[float]]
) -> None:
    """Each window's futures drawn again (its own fit and seed) and moved with the point by
    the window's candidate, then: the served coverage of window k is its band scaled by
    the factors of windows 1..k-1, and the version's factors are those of every window."""
    days, values = series
    bands = []
    for window in trained.metrics.windows:
        start, end = window_span(days, window)
        model = fit_prophet(days[:start], values[:start], PARAMS)
        seed = forecast_seed(PRODUCT, 0, end, PARAMS.interval_width)
        future = pd.DataFrame({"ds": pd.to_datetime(days[start:end])})
        drawn = backtest_futures(model, future, np.random.default_rng(seed))
        assert drawn.futures is not None
        points = served_points(
            independent_fit(days, values, start, end)[0], str(window["candidate"])
        )
        moved = drawn.futures + (points - drawn.yhat)[:, None]
        bands.append(WindowBands(np.asarray(values[start:end]), points, moved))
    width = PARAMS.interval_width
    for k, window in enumerate(trained.metrics.windows):
        assert window["coverage_prophet"] == pytest.approx(bands[k].coverage(width))
        if k == 0:
            continue
        learnt = calibrate(bands[:k])
        assert learnt is not None
        assert window["coverage"] == pytest.approx(bands[k].coverage(width, learnt))
        # what the window itself would teach gives another band: it is not used for it
        assert calibrate(bands[: k + 1]) != learnt
    assert trained.calibration == calibrate(bands)


def test_a_short_history_gets_the_windows_it_has_room_for(
    series: tuple[list[dt.date], list[float]],
) -> None:
    days, values = series
    # 60 days is the minimum for one window; each more window needs 28 more days
    assert len(window_cuts(days[-60:], 28, 3, 32)) == 1
    assert len(window_cuts(days[-88:], 28, 3, 32)) == 2
    short = train_model(PRODUCT, days[-100:], values[-100:], PARAMS)
    assert len(short.metrics.windows) == 2
    single = train_model(PRODUCT, days[-70:], values[-70:], PARAMS)
    assert single.metrics.windows == ()
    assert single.metrics.mean_over_windows is None


def test_one_window_is_the_single_holdout_backtest(
    series: tuple[list[dt.date], list[float]],
) -> None:
    """One window has no window before it: Prophet's points forecast it, as the
    single-holdout backtest did, and its band is Prophet's."""
    days, values = series
    params = dataclasses.replace(PARAMS, backtest_windows=1)
    one = train_model(PRODUCT, days, values, params).metrics
    unselected = train_model(
        PRODUCT, days, values, dataclasses.replace(params, select_candidates=False)
    ).metrics
    assert one.candidate == "prophet"
    assert one.mase == pytest.approx(unselected.mase, rel=1e-12)
    assert one.windows == ()
    assert one.coverage is None
    assert one.coverage_prophet == unselected.coverage_prophet


def test_the_factors_are_the_conformal_quantile_of_the_window_errors() -> None:
    rng = np.random.default_rng(3)
    yhat = np.zeros(40)
    futures = rng.normal(0, 1, (40, 2000))  # a band of a standard normal
    actual = rng.normal(0, 2, 40)  # errors twice as wide: the band is too narrow
    bands = WindowBands(actual, yhat, futures)
    calibration = calibrate([bands])
    assert calibration is not None
    assert (calibration.levels, calibration.reference) == (LEVELS, 0.8)
    # the errors in half-widths of the reference (80 %) band, one set for every level
    lower, upper = np.percentile(futures, [10, 90], axis=1)
    scores = np.sort(np.abs(actual) / np.where(actual >= 0, upper, -lower))
    for level, factor in zip(calibration.levels, calibration.factors, strict=True):
        rank = min(40, math.ceil(41 * level))
        assert factor == pytest.approx(scores[rank - 1])
    assert calibration.factor(0.8) > 1.4  # about 2: the errors' spread over the band's
    # scaled by its factor, the band holds at least its share of the points it learnt from
    for level in LEVELS:
        assert bands.coverage(level, calibration) >= level
    assert bands.coverage(0.8) < 0.8


def test_levels_between_and_outside_the_measured_ones() -> None:
    calibration = IntervalCalibration((0.5, 0.8, 0.9), (1.0, 1.3, 1.6), points=56)
    assert calibration.factor(0.85) == pytest.approx(1.45)
    assert calibration.factor(0.25) == pytest.approx(0.5)  # toward no width at 0
    assert calibration.factor(0.99) == 1.6
    assert IntervalCalibration.from_stored(calibration.to_dict()) == calibration
    good = calibration.to_dict()
    for stored in (
        None,
        {},
        "x",
        {**good, "levels": [0.9, 0.5, 0.8]},  # levels out of order
        {**good, "factors": [1.3, 1.0, 1.6]},  # a wider band scaled less: would not nest
        {**good, "factors": [1.0, 1.6, float("inf")]},
        {**good, "factors": [-1.0, 1.0, 1.6]},
        {**good, "reference": 1.0},
        {key: value for key, value in good.items() if key != "reference"},
    ):
        assert IntervalCalibration.from_stored(stored) is None  # type: ignore[arg-type]


def test_a_calibrated_forecast_scales_prophets_band_around_the_same_points(
    trained: TrainedModel,
) -> None:
    assert trained.calibration is not None
    plain = predict_points(trained.model, horizon=14, interval=0.8, seed=5)
    scaled = predict_points(
        trained.model, horizon=14, interval=0.8, seed=5, calibration=trained.calibration
    )
    factor = trained.calibration.factor(0.8)
    for p, s in zip(plain, scaled, strict=True):
        assert s["yhat"] == p["yhat"]
        assert s["yhat_upper"] - s["yhat"] == pytest.approx(factor * (p["yhat_upper"] - p["yhat"]))
        assert s["yhat"] - s["yhat_lower"] == pytest.approx(factor * (p["yhat"] - p["yhat_lower"]))
    again = predict_points(
        trained.model, horizon=14, interval=0.8, seed=5, calibration=trained.calibration
    )
    assert again == scaled


def test_a_wider_calibrated_band_holds_every_narrower_one_on_every_date(
    trained: TrainedModel,
) -> None:
    assert trained.calibration is not None
    widths = [0.01, 0.05, 0.1, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.81, 0.85, 0.9, 0.95, 0.98, 0.99]
    bands = [
        make_forecast(
            PRODUCT,
            2,
            trained.model,
            horizon=60,
            interval=width,
            trained_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            calibration=trained.calibration,
        )["points"]
        for width in widths
    ]
    for narrow, wide in itertools.pairwise(bands):
        for inner, outer in zip(narrow, wide, strict=True):
            assert inner["yhat"] == outer["yhat"]
            assert outer["yhat_lower"] <= inner["yhat_lower"]
            assert inner["yhat_upper"] <= outer["yhat_upper"]
    # and each width gets its own band: up to 95 % every step widens it
    spans = [sum(p["yhat_upper"] - p["yhat_lower"] for p in points) for points in bands]
    below = sum(width <= 0.95 for width in widths)
    assert all(a < b for a, b in itertools.pairwise(spans[:below]))


def test_calibration_off_serves_prophets_band_and_scores_it(
    series: tuple[list[dt.date], list[float]],
) -> None:
    days, values = series
    off = train_model(
        PRODUCT, days[-200:], values[-200:], dataclasses.replace(PARAMS, calibrate_intervals=False)
    )
    assert off.calibration is None
    assert off.metrics.coverage == off.metrics.coverage_prophet is not None
    assert TrainingParams(backtest_windows=1).backtest_windows == 1
    with pytest.raises(ValueError, match="backtest_windows must be at least 1"):
        TrainingParams(backtest_windows=0)


def test_the_service_serves_the_versions_calibrated_band_and_lists_its_windows(
    client: TestClient, demo_service: SalescastService
) -> None:
    """Over HTTP: the stored windows, factors and correction, and a forecast whose point is
    Prophet's corrected by the version's candidate and whose band is Prophet's 80 % band
    (the reference) scaled by the version's own factor for the width asked, moved with
    the point; recomputed here from the stored model with the draws of the reference width."""
    models = client.get("/products/CA_1-HOBBIES_1/models").json()
    active = next(m for m in models if m["active"])
    metrics = active["metrics"]
    assert len(metrics["windows"]) == 4
    assert metrics["mean_over_windows"]["windows"] == 4
    calibration = IntervalCalibration.from_stored(metrics["interval_calibration"])
    assert calibration is not None
    assert calibration.factor(0.9) != 1.0
    adjustment = PointAdjustment.from_stored(metrics["point_adjustment"])
    assert adjustment is not None
    assert not adjustment.is_identity
    body = client.get("/products/CA_1-HOBBIES_1/forecast?horizon=7&interval=0.9").json()
    model = demo_service.models.get_model("CA_1-HOBBIES_1", active["version"])
    seed = forecast_seed("CA_1-HOBBIES_1", active["version"], 7, 0.8)
    plain = predict_points(model, horizon=7, interval=0.8, seed=seed)
    dates = pd.to_datetime([p["ds"] for p in plain])
    trend = model.predict(pd.DataFrame({"ds": dates}))["trend"].to_numpy()
    corrected = adjustment.apply([p["yhat"] for p in plain], trend, dates.day_of_week)
    factor = calibration.factor(0.9)
    for served, raw, point in zip(body["points"], plain, corrected, strict=True):
        assert served["yhat"] == pytest.approx(point)  # the band moves with the point
        assert served["yhat_upper"] - served["yhat"] == pytest.approx(
            factor * (raw["yhat_upper"] - raw["yhat"])
        )
        assert served["yhat"] - served["yhat_lower"] == pytest.approx(
            factor * (raw["yhat"] - raw["yhat_lower"])
        )
