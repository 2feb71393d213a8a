"""Forecast intervals drawn from a generator local to one forecast: reproducible, isolated,
and as wide as Prophet's own."""

from __future__ import annotations

import copy
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from salescast.forecasting import make_forecast
from salescast.forecasting.model_codec import decode_model, encode_model
from salescast.forecasting.prediction import ForecastPoint, predict_points
from salescast.forecasting.sampling import forecast_seed
from salescast.forecasting.training import TrainingParams, fit_prophet

if TYPE_CHECKING:
    from prophet import Prophet

TRAINED_AT = dt.datetime(2024, 6, 3, 9, 15, 2, 417000, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def model() -> Prophet:
    """A decoded model (what the service predicts with) of a noisy weekly series on a trend."""
    noise = np.random.default_rng(7).normal(0, 6, 200)
    start = dt.date(2023, 1, 2)
    days = [start + dt.timedelta(days=i) for i in range(200)]
    values = [
        100 + 0.2 * i + (40 if d.weekday() >= 5 else 0) + e
        for i, (d, e) in enumerate(zip(days, noise, strict=True))
    ]
    fitted = fit_prophet(days, values, TrainingParams(uncertainty_samples=1000))
    return decode_model(encode_model(fitted))


def points(model: Prophet, *, horizon: int = 30, interval: float = 0.8, version: int = 1) -> Any:
    seed = forecast_seed("p", version, horizon, interval)
    return predict_points(model, horizon=horizon, interval=interval, seed=seed)


def bounds(found: list[ForecastPoint]) -> list[tuple[float, float]]:
    return [(p["yhat_lower"], p["yhat_upper"]) for p in found]


def test_the_same_arguments_give_the_same_points_again_and_from_two_threads_at_once(
    model: Prophet,
) -> None:
    first = points(model)
    assert points(model) == first
    start = threading.Barrier(2)

    def predict_after_the_barrier(_: int) -> Any:
        start.wait(timeout=30)
        return points(model)

    with ThreadPoolExecutor(max_workers=2) as pool:
        concurrent = list(pool.map(predict_after_the_barrier, range(2)))
    assert concurrent == [first, first]


@pytest.mark.parametrize(
    "other",
    [{"version": 2}, {"horizon": 31}, {"interval": 0.8000001}],
    ids=["version", "horizon", "interval"],
)
def test_other_arguments_give_another_draw_that_is_reproducible_in_turn(
    model: Prophet, other: dict[str, Any]
) -> None:
    base = points(model)
    changed = points(model, **other)
    # The first 30 dates are the same dates with the same yhat; only the draw differs.
    assert [p["yhat"] for p in changed[:30]] == [p["yhat"] for p in base]
    assert bounds(changed[:30]) != bounds(base)
    assert points(model, **other) == changed


def test_a_prediction_neither_reads_nor_advances_the_global_numpy_random_state(
    model: Prophet,
) -> None:
    np.random.seed(1)
    state = np.random.get_state()
    after_seed_one = points(model)
    after = np.random.get_state()
    assert after[0] == state[0]
    assert np.array_equal(after[1], state[1])
    assert after[2:] == state[2:]
    np.random.seed(2)
    assert points(model) == after_seed_one  # another global state, the same draw


def test_a_forecast_does_not_change_the_shared_model(model: Prophet) -> None:
    before = (model.interval_width, model.uncertainty_samples)
    points(model, interval=0.95)
    assert (model.interval_width, model.uncertainty_samples) == before


def test_the_points_are_prophets_own_and_the_interval_is_as_wide_as_prophets(
    model: Prophet,
) -> None:
    found = points(model, horizon=365, interval=0.8)
    view = copy.copy(model)
    view.interval_width = 0.8
    np.random.seed(3)  # Prophet's reference draws come from the global generator
    reference = view.predict(model.make_future_dataframe(periods=365, include_history=False))
    assert [p["yhat"] for p in found] == pytest.approx(list(reference["yhat"]), rel=1e-12)
    ours = np.array([hi - lo for lo, hi in bounds(found)])
    theirs = (reference["yhat_upper"] - reference["yhat_lower"]).to_numpy()
    # 1,000 futures each: the widths agree within sampling error, date by date and on average.
    assert ours.mean() / theirs.mean() == pytest.approx(1, abs=0.05)
    assert np.all(np.abs(ours / theirs - 1) < 0.2)
    # the simulated trend changes widen the last weeks' interval, as Prophet's (~ +40 %)
    assert ours[-28:].mean() > 1.2 * ours[:28].mean()


def test_the_seed_depends_on_every_argument_and_never_on_the_process() -> None:
    seeds = {
        forecast_seed("CA_1-HOBBIES_1", 5, 2, 0.8),
        forecast_seed("CA_1-HOBBIES_1", 6, 2, 0.8),
        forecast_seed("CA_1-HOBBIES_1", 5, 3, 0.8),
        forecast_seed("CA_1-HOBBIES_1", 5, 2, 0.9),
        forecast_seed("CA_1-HOBBIES_2", 5, 2, 0.8),
    }
    assert len(seeds) == 5
    # A fixed value: a change of the derivation would change every served body and must
    # be a deliberate one (CHANGELOG), not an accident of a refactoring.
    assert forecast_seed("CA_1-HOBBIES_1", 5, 2, 0.8) == 0x724738AB4EA685E54E64ACD5018E3201


def test_generated_at_is_the_versions_trained_at_time_in_utc(model: Prophet) -> None:
    local = TRAINED_AT.astimezone(dt.timezone(dt.timedelta(hours=2)))
    forecast = make_forecast("p", 1, model, horizon=3, interval=0.8, trained_at=local)
    assert forecast["generated_at"] == "2024-06-03T09:15:02+00:00"
    again = make_forecast("p", 1, model, horizon=3, interval=0.8, trained_at=TRAINED_AT)
    assert again == forecast


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_the_fits_component_matrix_is_the_one_prediction_would_build(mode: str) -> None:
    """`_seasonality_features` reuses `train_component_cols`; with holidays in the fit and
    none in the forecast window (and some), the features and matrix are Prophet's own."""
    from salescast.forecasting.sampling import _seasonality_features

    start = dt.date(2022, 1, 3)
    days = [start + dt.timedelta(days=i) for i in range(500)]
    values = [50 + (i % 7) * 3 + 0.05 * i for i in range(500)]
    params = TrainingParams(holidays_country="US", seasonality_mode=mode)  # type: ignore[arg-type]
    fitted = decode_model(encode_model(fit_prophet(days, values, params)))
    for first in (dt.date(2023, 6, 1), dt.date(2023, 12, 20)):  # no holiday; Christmas
        future = fitted.setup_dataframe(
            pd.DataFrame({"ds": pd.date_range(first, periods=20, freq="D")})
        )
        features, matrix = _seasonality_features(fitted, future)
        expected, _, expected_matrix, _ = fitted.make_all_seasonality_features(future)
        pd.testing.assert_frame_equal(features, expected)
        pd.testing.assert_frame_equal(matrix, expected_matrix, check_names=False)
