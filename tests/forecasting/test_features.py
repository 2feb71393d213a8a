"""salescast's seasonality features and component matrix against Prophet's own, and fits
made with them against fits made without (salescast.forecasting.features)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from prophet import Prophet

from salescast.forecasting.features import fast_features, seasonality_features
from salescast.forecasting.map_fit import MapFitBackend
from salescast.forecasting.sampling import backtest_futures
from salescast.forecasting.training import TrainingParams, fit_prophet
from tests.conftest import m5_department


@pytest.fixture(scope="module")
def series() -> tuple[list[dt.date], list[float]]:
    return m5_department("TX_2", "HOUSEHOLD_1")


def fitted(days: list[dt.date], values: list[float], **options: object) -> Prophet:
    """A Prophet fit with Prophet's own feature code (no salescast speed-up)."""
    model = Prophet(uncertainty_samples=0, **options)  # type: ignore[arg-type]
    model.stan_backend = MapFitBackend()
    return model.fit(pd.DataFrame({"ds": pd.to_datetime(days), "y": values}))


def same_features(model: Prophet, df: pd.DataFrame) -> None:
    ours = seasonality_features(model, df)
    theirs = Prophet.make_all_seasonality_features(model, df)
    pd.testing.assert_frame_equal(ours[0], theirs[0], check_exact=True)
    assert ours[1] == theirs[1]
    pd.testing.assert_frame_equal(ours[2], theirs[2], check_exact=True)
    assert ours[3] == theirs[3]


@pytest.mark.parametrize(
    "options",
    [
        {},  # daily: weekly and yearly
        {"weekly_seasonality": False},  # as a weekly or monthly product: yearly only
        {"weekly_seasonality": False, "yearly_seasonality": False},  # none: the dummy column
        {"seasonality_mode": "multiplicative"},
    ],
    ids=["weekly+yearly", "yearly", "none", "multiplicative"],
)
def test_the_features_and_matrix_are_prophets_bit_for_bit(
    series: tuple[list[dt.date], list[float]], options: dict[str, object]
) -> None:
    days, values = series
    model = fitted(days[:800], values[:800], **options)
    history = model.history
    assert history is not None
    same_features(model, history)
    future = model.make_future_dataframe(periods=45, include_history=False)
    same_features(model, model.setup_dataframe(future))
    # twice: the second matrix comes from the per-process table
    same_features(model, model.setup_dataframe(future))


def test_a_model_with_holidays_gets_prophets_own_features(
    series: tuple[list[dt.date], list[float]],
) -> None:
    days, values = series
    model = Prophet(uncertainty_samples=0)
    model.add_country_holidays(country_name="US")
    model.stan_backend = MapFitBackend()
    model.fit(pd.DataFrame({"ds": pd.to_datetime(days[:800]), "y": values[:800]}))
    assert model.history is not None
    same_features(model, model.history)
    # and a fit with them is the fit without
    params = TrainingParams(holidays_country="US", uncertainty_samples=0)
    ours = fit_prophet(days[:800], values[:800], params)
    for name in ("k", "m", "delta", "beta", "sigma_obs"):
        np.testing.assert_array_equal(ours.params[name], model.params[name])


def test_a_fit_with_them_is_the_fit_without_and_the_model_is_left_plain(
    series: tuple[list[dt.date], list[float]],
) -> None:
    days, values = series
    ours = fit_prophet(days, values, TrainingParams(uncertainty_samples=0))
    theirs = fitted(days, values)
    for name in ("k", "m", "delta", "beta", "sigma_obs"):
        np.testing.assert_array_equal(ours.params[name], theirs.params[name])
    pd.testing.assert_frame_equal(ours.train_component_cols, theirs.train_component_cols)
    assert ours.component_modes == theirs.component_modes
    assert "make_all_seasonality_features" not in vars(ours)
    assert "regressor_column_matrix" not in vars(ours)


def test_a_failing_fit_leaves_the_model_plain_too() -> None:
    model = Prophet()
    with pytest.raises(ValueError, match="less than 2 non-NaN rows"), fast_features(model):
        model.fit(pd.DataFrame({"ds": pd.to_datetime(["2024-01-01"]), "y": [1.0]}))
    assert "make_all_seasonality_features" not in vars(model)


def test_training_dates_before_a_window_leave_its_draws_as_they_were(
    series: tuple[list[dt.date], list[float]],
) -> None:
    """backtest_futures with `history` rows: the same window futures and points as without
    them, and the history rows' points are Prophet's fitted values."""
    days, values = series
    model = fit_prophet(days[:-28], values[:-28], TrainingParams(uncertainty_samples=200))
    window = pd.DataFrame({"ds": pd.to_datetime(days[-28:])})
    both = pd.DataFrame({"ds": pd.to_datetime(days[-84:])})
    alone = backtest_futures(model, window, np.random.default_rng(7))
    with_history = backtest_futures(model, both, np.random.default_rng(7), history=56)
    assert alone.futures is not None
    assert with_history.futures is not None
    np.testing.assert_array_equal(with_history.futures, alone.futures)
    np.testing.assert_allclose(with_history.yhat[56:], alone.yhat, rtol=1e-12)
    plain = model.predict(both)
    np.testing.assert_allclose(with_history.yhat, plain["yhat"], rtol=1e-9)
    np.testing.assert_allclose(with_history.trend, plain["trend"], rtol=1e-9)
