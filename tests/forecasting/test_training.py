"""Training one Prophet model: minimum history, backtest metrics, temp files, codec."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import tempfile
from pathlib import Path

import pytest

from salescast.forecasting import InsufficientHistoryError, TrainingParams, train_model
from salescast.forecasting.model_codec import ModelDecodeError, decode_model, encode_model
from salescast.forecasting.prediction import predict_points
from salescast.forecasting.training import FitBackend, fit_prophet
from salescast.service import SalescastService

PARAMS = TrainingParams(uncertainty_samples=50)


def weekly_series(n: int) -> tuple[list[dt.date], list[float]]:
    start = dt.date(2023, 1, 2)
    days = [start + dt.timedelta(days=i) for i in range(n)]
    # a weekly pattern on a slow trend: what a shop's sales look like, minus noise
    return days, [100 + i * 0.1 + (40 if d.weekday() >= 5 else 0) for i, d in enumerate(days)]


def test_too_little_history_is_refused_naming_the_minimum() -> None:
    days, values = weekly_series(59)
    with pytest.raises(InsufficientHistoryError, match="at least 60"):
        train_model("p", days, values, PARAMS)


def test_too_little_weekly_history_is_refused_in_weeks() -> None:
    fridays = [dt.date(2024, 1, 5) + dt.timedelta(weeks=i) for i in range(65)]
    with pytest.raises(InsufficientHistoryError, match=r"65 week\(s\) of sales; .* least 66"):
        train_model("p", fridays, [1.0] * 65, PARAMS, freq="W-FRI")


def test_holdout_longer_than_the_minimum_allows_is_a_setting_error() -> None:
    with pytest.raises(ValueError, match="min_history_days"):
        TrainingParams(holdout_days=56, min_history_days=60)
    with pytest.raises(ValueError, match=r"min_history_weeks \(60\) must be at least"):
        TrainingParams(min_history_weeks=60)


def test_parameters_stored_before_frequencies_read_as_a_daily_fit_with_defaults() -> None:
    old = {"holidays_country": "US", "holdout_days": 21, "min_history_days": 50}
    params, freq = TrainingParams.from_stored({**old, "uncertainty_samples": 10})
    assert freq == "D"
    assert (params.holidays_country, params.holdout_days, params.uncertainty_samples) == (
        "US",
        21,
        10,
    )
    assert (params.holdout_weeks, params.min_history_months) == (13, 24)
    current = TrainingParams(holdout_weeks=20, min_history_weeks=80)
    stored = {**current.to_dict(), "frequency": "W-FRI", "from_a_newer_salescast": 1}
    assert TrainingParams.from_stored(stored) == (current, "W-FRI")


def test_a_weekly_pattern_is_learnt_better_than_seasonal_naive_or_equal() -> None:
    days, values = weekly_series(120)
    trained = train_model("p", days, values, PARAMS)
    metrics = trained.metrics
    assert metrics.holdout_days == 28
    assert metrics.mase is not None
    assert math.isfinite(metrics.mase)
    assert metrics.mase_seasonal_naive is not None
    # the series is trend + weekly cycle, which Prophet models exactly
    assert metrics.mase <= metrics.mase_seasonal_naive + 0.05
    assert (trained.train_start, trained.train_end) == (days[0], days[-1])


@pytest.mark.parametrize("backend", ["cmdstan", "numpy"])
def test_training_leaves_no_stan_files_behind(backend: FitBackend) -> None:
    import cmdstanpy.utils.filesystem as stan_fs

    stan_tmp = Path(stan_fs._TMPDIR)
    before = set(stan_tmp.rglob("*")) | set(Path(tempfile.gettempdir()).glob("salescast-stan-*"))
    days, values = weekly_series(90)
    train_model("p", days, values, dataclasses.replace(PARAMS, fit_backend=backend))
    after = set(stan_tmp.rglob("*")) | set(Path(tempfile.gettempdir()).glob("salescast-stan-*"))
    assert after - before == set()


def test_a_model_survives_the_codec_and_predicts_the_same_points() -> None:
    days, values = weekly_series(90)
    model = train_model("p", days, values, TrainingParams(uncertainty_samples=0)).model
    blob = encode_model(model)
    assert blob[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame, not a pickle
    restored = decode_model(blob)
    original = predict_points(model, horizon=7, interval=0.8, seed=1)
    assert predict_points(restored, horizon=7, interval=0.8, seed=1) == original


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\x28\xb5\x2f\xfd" + b"\x00" * 20])
def test_bytes_that_are_not_a_model_raise_model_decode_error(blob: bytes) -> None:
    with pytest.raises(ModelDecodeError):
        decode_model(blob)


def test_demo_models_carry_their_backtest_and_window(demo_service: SalescastService) -> None:
    [info] = demo_service.list_models("CA_1-FOODS_3")
    assert info.train_start == dt.date(2014, 4, 25)
    assert info.train_end == dt.date(2016, 4, 24)
    assert info.metrics["holdout_days"] == 28
    assert 0 < info.metrics["mase"] < 5
    assert info.params["holdout_days"] == 28
    assert info.model_format == "prophet-json+zstd"


def test_a_month_end_series_is_forecast_on_month_ends_with_a_yearly_seasonality_only() -> None:
    ends = [dt.date(2021 + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1) for m in range(1, 31)]
    values = [100.0 + 10 * (d.month in (11, 12)) for d in ends]
    model = fit_prophet(ends, values, PARAMS, freq="ME", uncertainty_samples=0)
    assert set(model.seasonalities) == {"yearly"}
    points = predict_points(model, horizon=3, interval=0.8, seed=1, freq="ME")
    assert [p["ds"] for p in points] == [
        "2023-07-31",
        "2023-08-31",
        "2023-09-30",
    ]  # after 2023-06-30
