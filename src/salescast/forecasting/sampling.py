"""Prophet's uncertainty intervals, drawn from a random generator local to one forecast.

Why not Prophet's own `predict`: prophet 1.5 (forecaster.py) draws the
simulated futures from the *global* `numpy.random` functions
(`_make_trend_shift_matrix`: `np.random.uniform` and `np.random.laplace`;
`sample_model_vectorized`: `np.random.normal`; the non-vectorized path also
`np.random.poisson` and `np.random.rand`). So every predict of the same model
gave other bounds, and a forecast's ETag named no single body. Seeding the
global generator is no fix: predictions run in threads at once, each would
reseed or advance the others' stream, and any other user of `numpy.random` in
the process would shift ours.

So the points are Prophet's own (`predict` on a view with
`uncertainty_samples=0`, which draws nothing; a version's correction
(`salescast.forecasting.adjustment`) then moves point and band together), and
the interval is computed
here by the method of Prophet's vectorized `predict_uncertainty`, line for
line, with every draw taken from a `numpy.random.Generator` made for this one
forecast:

- per posterior iteration (one for a MAP fit), `ceil(uncertainty_samples /
  iterations)` futures;
- each future's trend: the fitted trend plus simulated changepoints, a slope
  change at each future step with probability `changepoints * step` and size
  Laplace(0, mean |delta|), averaged over adjacent steps and integrated twice
  (linear growth), or pushed through the logistic curve (Prophet's own
  `_logistic_uncertainty`, which draws nothing); no trend uncertainty for flat
  growth or for dates inside the history;
- plus the seasonal and holiday terms of that iteration, plus Normal(0,
  sigma_obs) observation noise;
- the interval is the central `interval` share of those futures per date
  (Prophet's `percentile`, NaN-tolerant).

The draws differ from Prophet's (another bit generator), their distribution
does not: the bounds are as wide as Prophet's, within sampling error.

The seed (`forecast_seed`) is a BLAKE2b digest of what names a forecast:
product, model version, horizon and interval. The same arguments give the
same bytes in any thread, worker, process or restart; another horizon,
interval or version gives another, equally reproducible draw. A version with
a calibrated band names its reference width instead of the interval: its
bands of every width are read from one draw, so they nest
(`salescast.forecasting.calibration`).

Not covered: extra regressors with their own predictor models (Prophet 1.5
samples those regressors' futures with the global generator too). salescast
never adds regressors; such a model is refused with ValueError rather than
forecast irreproducibly.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from salescast.forecasting.adjustment import PointAdjustment
from salescast.forecasting.calibration import IntervalCalibration, scale_band
from salescast.forecasting.features import seasonality_features

if TYPE_CHECKING:
    from prophet import Prophet

# Keeps these seeds apart from any other BLAKE2b use of the same values.
_PERSON = b"salescast-fcst"


def forecast_seed(product_id: str, version: int, horizon: int, interval: float) -> int:
    """The 128-bit seed of one forecast's draws: a function of its arguments only.

    The arguments are hashed as a JSON array (unambiguous for any product id;
    the interval as the shortest repr that round-trips, so 0.8 and 0.80000001
    get different seeds, as they get different cache keys).
    """
    text = json.dumps([product_id, int(version), int(horizon), float(interval)])
    digest = hashlib.blake2b(text.encode(), digest_size=16, person=_PERSON).digest()
    return int.from_bytes(digest, "big")


def predict_with_interval(
    model: Prophet,
    future: pd.DataFrame,
    *,
    interval: float,
    rng: np.random.Generator,
    calibration: IntervalCalibration | None = None,
    adjustment: PointAdjustment | None = None,
) -> pd.DataFrame:
    """`future`'s `ds`, `yhat` (Prophet's own, before the correction below) and
    `yhat_lower`/`yhat_upper` (`interval`
    wide, drawn from `rng` only; scaled by the version's `calibration` when it has one,
    see `salescast.forecasting.calibration`). With the version's `adjustment`
    (`salescast.forecasting.adjustment`), the point and both bounds move by its
    correction of the point.

    `model` is not modified (it may be shared by threads) and the global numpy
    random state is neither read nor advanced. A model fit with
    `uncertainty_samples=0` gets bounds equal to `yhat`, as it has no interval.
    Raises ValueError for a model whose regressors are predicted by models.
    """
    result, futures = simulate_futures(model, future, rng)
    yhat = result["yhat"].to_numpy()
    if futures is None:
        lower = upper = yhat
    else:
        # Calibrated: the version's reference band, scaled for `interval` (every width
        # from the same band, so the bands nest); else Prophet's band `interval` wide.
        width = interval if calibration is None else calibration.reference
        lower = model.percentile(futures, 100 * (1.0 - width) / 2, axis=1)
        upper = model.percentile(futures, 100 * (1.0 + width) / 2, axis=1)
        if calibration is not None:
            lower, upper = scale_band(yhat, lower, upper, calibration.factor(interval))
    shift = 0.0
    if adjustment is not None and not adjustment.is_identity:
        weekdays = pd.DatetimeIndex(result["ds"]).day_of_week
        shift = adjustment.apply(yhat, result["trend"].to_numpy(), weekdays) - yhat
    result["yhat"] = yhat + shift
    result["yhat_lower"] = lower + shift
    result["yhat_upper"] = upper + shift
    return result.drop(columns="trend")


def simulate_futures(
    model: Prophet, future: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray[Any, Any] | None]:
    """Prophet's point forecasts of `future`'s dates (`ds`, `yhat`, and the `trend` under
    them) and the simulated futures around them (dates x futures, drawn from `rng` only;
    None for a model without uncertainty samples).

    Raises ValueError for a model whose regressors are predicted by models.
    """
    _refuse_predicted_regressors(model)
    result = _predicted(model, future)
    if not model.uncertainty_samples:
        return result, None
    return result, _simulate_yhat(model, model.setup_dataframe(future.copy()), rng)[2]


@dataclass(frozen=True)
class WindowForecast:
    """A fit's points and trend at a frame's dates, and the futures simulated for its window."""

    yhat: np.ndarray[Any, Any]
    trend: np.ndarray[Any, Any]
    futures: np.ndarray[Any, Any] | None  # the window's dates x futures; None: no interval


def backtest_futures(
    model: Prophet, future: pd.DataFrame, rng: np.random.Generator, *, history: int = 0
) -> WindowForecast:
    """As `simulate_futures`, for a backtest window: the point forecasts computed here, from
    the features the simulation builds anyway, instead of by another `predict`.

    The first `history` rows of `future` are training dates whose fitted values
    are wanted too (`salescast.forecasting.adjustment` reads the residuals of
    the last ones): they get points and trend, no futures, and the futures of
    the rows after them are the same draws as without them.

    The same arithmetic as Prophet's `predict` for a MAP fit (one posterior
    iteration): `trend * (1 + multiplicative terms) + additive terms`, the trend
    `piecewise_linear` (or logistic, or flat) on the fitted parameters; the
    tests compare it with `predict`. Saves building the seasonality features a
    third time per window. A model with several iterations (MCMC) or without
    uncertainty samples goes through Prophet's `predict`.
    """
    _refuse_predicted_regressors(model)
    if model.params["k"].shape[0] != 1 or not model.uncertainty_samples:
        futures = None
        if model.uncertainty_samples:
            window = model.setup_dataframe(future.iloc[history:].copy())
            futures = _simulate_yhat(model, window, rng)[2]
        return WindowForecast(*_prophet_points(model, future), futures)
    df = model.setup_dataframe(future.copy())
    points, trend, futures = _simulate_yhat(model, df, rng, drawn_from=history)
    return WindowForecast(points, trend, np.asarray(futures, dtype=float))


def fitted_points(
    model: Prophet, future: pd.DataFrame
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The point forecasts and the trend at `future`'s dates, drawing nothing (for a MAP
    fit by `backtest_futures`' arithmetic, else by Prophet's `predict`)."""
    if model.params["k"].shape[0] != 1:
        return _prophet_points(model, future)
    df = model.setup_dataframe(future.copy())
    features, component_cols = _seasonality_features(model, df)
    return _points(model, df, _terms(model, features.values, component_cols, 0), 0)


def fitted_trend_mean(model: Prophet) -> float:
    """The mean of the fitted trend over the model's training dates, on the data's scale."""
    history = cast(pd.DataFrame, model.history)
    if model.params["k"].shape[0] == 1:
        trend = _expected_trend(model, history, 0) * cast(float, model.y_scale)
        return float(np.mean(trend + np.asarray(history["floor"], dtype=float)))
    return float(_predicted(model, history[["ds"]])["trend"].mean())


def _predicted(model: Prophet, future: pd.DataFrame) -> pd.DataFrame:
    """Prophet's own `ds`, `yhat` and `trend` at `future`'s dates, drawing nothing."""
    points = copy.copy(model)
    points.uncertainty_samples = 0  # Prophet's predict then draws nothing
    frame = points.predict(future)
    return pd.DataFrame({"ds": frame["ds"], "yhat": frame["yhat"], "trend": frame["trend"]})


def _prophet_points(
    model: Prophet, future: pd.DataFrame
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """`_predicted`'s `yhat` and `trend`, as arrays."""
    frame = _predicted(model, future)
    return frame["yhat"].to_numpy(dtype=float), frame["trend"].to_numpy(dtype=float)


def _refuse_predicted_regressors(model: Prophet) -> None:
    if any(props.get("predictor") is not None for props in model.extra_regressors.values()):
        raise ValueError("models with predicted extra regressors cannot be forecast reproducibly")


def _simulate_yhat(
    model: Prophet, df: pd.DataFrame, rng: np.random.Generator, *, drawn_from: int = 0
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Simulated observations of `df`'s rows from `drawn_from` on, one column per future:
    Prophet's `sample_posterior_predictive` (vectorized) with `sample_model_vectorized`,
    drawing from `rng`; returned after the first iteration's point forecast and trend at
    every row of `df` (see `backtest_futures`)."""
    params = model.params
    iterations = params["k"].shape[0]
    per_iteration = max(1, int(np.ceil(model.uncertainty_samples / float(iterations))))
    features, component_cols = _seasonality_features(model, df)
    x = features.values
    y_scale = cast(float, model.y_scale)
    drawn = df.iloc[drawn_from:]
    rows = []
    points: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None = None
    for i in range(iterations):
        xb_a, xb_m = terms = _terms(model, x, component_cols, i)
        trends = _trend_paths(model, drawn, per_iteration, i, rng)
        noise = rng.normal(0, params["sigma_obs"][i], trends.shape) * y_scale
        rows.append(trends * (1 + xb_m[drawn_from:]) + xb_a[drawn_from:] + noise)
        if points is None:
            points = _points(model, df, terms, i)
    assert points is not None  # a fit has at least one iteration
    futures = np.vstack(rows).T  # dates x futures, like Prophet's column_stack
    return (*points, futures)


def _terms(
    model: Prophet, x: np.ndarray[Any, Any], component_cols: pd.DataFrame, iteration: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One iteration's additive terms (on the data's scale) and multiplicative terms."""
    beta = model.params["beta"][iteration]
    s_a = component_cols["additive_terms"].values
    s_m = component_cols["multiplicative_terms"].values
    return np.matmul(x, beta * s_a) * cast(float, model.y_scale), np.matmul(x, beta * s_m)


def _points(
    model: Prophet,
    df: pd.DataFrame,
    terms: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
    iteration: int,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One iteration's point forecasts and trend at `df`'s rows, on the data's scale, from
    its `_terms` there."""
    xb_a, xb_m = terms
    trend = _expected_trend(model, df, iteration) * cast(float, model.y_scale)
    trend = trend + np.asarray(df["floor"], dtype=float)
    points = trend * (1 + xb_m) + xb_a
    return np.asarray(points, dtype=float), np.asarray(trend, dtype=float)


def _seasonality_features(model: Prophet, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`make_all_seasonality_features(df)`'s features and component matrix, the matrix taken
    from the fit (`train_component_cols`) instead of being built again, the features by
    `salescast.forecasting.features` (the same values, without Prophet's per-call pandas
    overhead).

    The matrix says which feature column belongs to which component; it depends
    on the model's seasonalities, holidays and regressors, not on the dates
    (prediction builds the training's columns, holidays included, so that they
    line up with the fitted coefficients). Features of another width than the
    fit's matrix get the full build.
    """
    features, _, component_cols, _ = seasonality_features(model, df, model.train_component_cols)
    return features, component_cols


def _expected_trend(model: Prophet, df: pd.DataFrame, iteration: int) -> Any:
    """The fitted trend of one posterior iteration at `df`'s times, on the scaled axis."""
    params = model.params
    deltas, m, k = params["delta"][iteration], params["m"][iteration], params["k"][iteration]
    t = np.asarray(df["t"].values, dtype=float)
    changepoints_t = np.asarray(model.changepoints_t)
    if model.growth == "linear":
        return model.piecewise_linear(t, deltas, k, m, changepoints_t)
    if model.growth == "logistic":
        cap = np.asarray(df["cap_scaled"].values, dtype=float)
        return model.piecewise_logistic(t, cap, deltas, k, m, changepoints_t)
    return model.flat_trend(t, m)


def _trend_paths(
    model: Prophet, df: pd.DataFrame, n_samples: int, iteration: int, rng: np.random.Generator
) -> Any:
    """`n_samples` trend futures on the data's scale: `sample_predictive_trend_vectorized`."""
    expected = _expected_trend(model, df, iteration)
    changes = _trend_changes(model, df, n_samples, iteration, rng)
    floor = np.asarray(df["floor"].values, dtype=float)
    y_scale = cast(float, model.y_scale)
    return (np.tile(expected, (n_samples, 1)) + changes) * y_scale + np.tile(floor, (n_samples, 1))


def _trend_changes(
    model: Prophet, df: pd.DataFrame, n_samples: int, iteration: int, rng: np.random.Generator
) -> Any:
    """Simulated future trend changes, standardized: Prophet's `_sample_uncertainty`."""
    if df["t"].max() <= 1 or model.growth == "flat":  # no trend uncertainty
        return np.zeros((n_samples, len(df)))
    future = df.loc[df["t"] > 1]
    n_length = len(future)
    # one future date: the step is the history's (as Prophet does)
    steps = future["t"] if n_length > 1 else cast(pd.DataFrame, model.history)["t"]
    single_diff = float(np.diff(steps).mean())
    likelihood = len(np.asarray(model.changepoints_t)) * single_diff
    deltas, m, k = (model.params[name][iteration] for name in ("delta", "m", "k"))
    mean_delta = np.mean(np.abs(deltas)) + 1e-8
    mat = _trend_shift_matrix(mean_delta, likelihood, n_length, n_samples, rng)
    if model.growth == "linear":
        changes = mat.cumsum(axis=1).cumsum(axis=1) * single_diff
    else:  # logistic: Prophet's own curve, deterministic given the shifts
        changes = model._logistic_uncertainty(
            mat=mat,
            deltas=deltas,
            k=k,
            m=m,
            cap=np.asarray(future["cap_scaled"].values, dtype=float),
            t_time=np.asarray(future["t"].values, dtype=float),
            n_length=n_length,
            single_diff=single_diff,
        )
    past = int(np.sum(df["t"] <= 1))
    if past:  # dates inside the history have no trend uncertainty
        changes = np.concatenate([np.zeros((n_samples, past)), changes], axis=1)
    return changes


def _trend_shift_matrix(
    mean_delta: float, likelihood: float, length: int, n_samples: int, rng: np.random.Generator
) -> Any:
    """Random slope changes, one row per future: Prophet's `_make_trend_shift_matrix`."""
    changed = rng.uniform(size=(n_samples, length)) < likelihood
    shifts = rng.laplace(0, mean_delta, size=changed.shape) * changed
    previous = np.hstack([np.zeros((n_samples, 1)), shifts])[:, :-1]
    return (previous + shifts) / 2
