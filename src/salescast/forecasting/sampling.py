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
`uncertainty_samples=0`, which draws nothing), and the interval is computed
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
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from salescast.forecasting.calibration import IntervalCalibration, scale_band

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
) -> pd.DataFrame:
    """`future`'s `ds`, `yhat` (Prophet's own) and `yhat_lower`/`yhat_upper` (`interval`
    wide, drawn from `rng` only; scaled by the version's `calibration` when it has one,
    see `salescast.forecasting.calibration`).

    `model` is not modified (it may be shared by threads) and the global numpy
    random state is neither read nor advanced. A model fit with
    `uncertainty_samples=0` gets bounds equal to `yhat`, as it has no interval.
    Raises ValueError for a model whose regressors are predicted by models.
    """
    result, futures = simulate_futures(model, future, rng)
    yhat = result["yhat"].to_numpy()
    if futures is None:
        result["yhat_lower"] = result["yhat"]
        result["yhat_upper"] = result["yhat"]
        return result
    # Calibrated: the version's reference band, scaled for `interval` (every width
    # from the same band, so the bands nest); else Prophet's band `interval` wide.
    width = interval if calibration is None else calibration.reference
    lower = model.percentile(futures, 100 * (1.0 - width) / 2, axis=1)
    upper = model.percentile(futures, 100 * (1.0 + width) / 2, axis=1)
    if calibration is not None:
        lower, upper = scale_band(yhat, lower, upper, calibration.factor(interval))
    result["yhat_lower"] = lower
    result["yhat_upper"] = upper
    return result


def simulate_futures(
    model: Prophet, future: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray[Any, Any] | None]:
    """Prophet's point forecasts of `future`'s dates (`ds`, `yhat`) and the simulated
    futures around them (dates x futures, drawn from `rng` only; None for a model without
    uncertainty samples).

    Raises ValueError for a model whose regressors are predicted by models.
    """
    if any(props.get("predictor") is not None for props in model.extra_regressors.values()):
        raise ValueError("models with predicted extra regressors cannot be forecast reproducibly")
    points = copy.copy(model)
    points.uncertainty_samples = 0  # Prophet's predict then draws nothing
    frame = points.predict(future)
    result = pd.DataFrame({"ds": frame["ds"], "yhat": frame["yhat"]})
    if not model.uncertainty_samples:
        return result, None
    return result, _simulate_yhat(model, model.setup_dataframe(future.copy()), rng)


def backtest_futures(
    model: Prophet, future: pd.DataFrame, rng: np.random.Generator
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """As `simulate_futures`, for a backtest window: the point forecasts computed here, from
    the features the simulation builds anyway, instead of by another `predict`.

    The same arithmetic as Prophet's `predict` for a MAP fit (one posterior
    iteration): `trend * (1 + multiplicative terms) + additive terms`, the trend
    `piecewise_linear` (or logistic, or flat) on the fitted parameters; the
    tests compare it with `predict`. Saves building the seasonality features a
    third time per window. A model with several iterations (MCMC) or without
    uncertainty samples goes through `simulate_futures`.
    """
    if model.params["k"].shape[0] != 1 or not model.uncertainty_samples:
        frame, futures = simulate_futures(model, future, rng)
        return frame["yhat"].to_numpy(dtype=float), futures
    if any(props.get("predictor") is not None for props in model.extra_regressors.values()):
        raise ValueError("models with predicted extra regressors cannot be forecast reproducibly")
    df = model.setup_dataframe(future.copy())
    points, futures = _simulate_yhat(model, df, rng, with_points=True)
    return np.asarray(points, dtype=float), np.asarray(futures, dtype=float)


def _simulate_yhat(
    model: Prophet, df: pd.DataFrame, rng: np.random.Generator, *, with_points: bool = False
) -> Any:
    """Simulated observations, one column per future: Prophet's `sample_posterior_predictive`
    (vectorized) with `sample_model_vectorized`, drawing from `rng`. `with_points`: also
    the first iteration's point forecast, returned first (see `backtest_futures`)."""
    params = model.params
    iterations = params["k"].shape[0]
    per_iteration = max(1, int(np.ceil(model.uncertainty_samples / float(iterations))))
    features, component_cols = _seasonality_features(model, df)
    x = features.values
    s_a = component_cols["additive_terms"].values
    s_m = component_cols["multiplicative_terms"].values
    y_scale = cast(float, model.y_scale)
    rows = []
    points = None
    for i in range(iterations):
        beta = params["beta"][i]
        xb_a = np.matmul(x, beta * s_a) * y_scale
        xb_m = np.matmul(x, beta * s_m)
        trends = _trend_paths(model, df, per_iteration, i, rng)
        noise = rng.normal(0, params["sigma_obs"][i], trends.shape) * y_scale
        rows.append(trends * (1 + xb_m) + xb_a + noise)
        if with_points and points is None:
            trend = _expected_trend(model, df, i) * y_scale + np.asarray(df["floor"], dtype=float)
            points = trend * (1 + xb_m) + xb_a
    futures = np.vstack(rows).T  # dates x futures, like Prophet's column_stack
    return (points, futures) if with_points else futures


def _seasonality_features(model: Prophet, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`make_all_seasonality_features(df)`'s features and component matrix, the matrix taken
    from the fit (`train_component_cols`) instead of being built again.

    The matrix says which feature column belongs to which component; it depends
    on the model's seasonalities, holidays and regressors, not on the dates
    (prediction builds the training's columns, holidays included, so that they
    line up with the fitted coefficients). Building it is a `pd.crosstab`,
    about a third of the features' cost, once per forecast and per backtest
    window. A model without the fit's matrix, or features of another width,
    get the full build.
    """
    trained = model.train_component_cols
    if trained is not None:
        view = copy.copy(model)
        view.regressor_column_matrix = lambda _features, modes: (trained, modes)  # type: ignore[method-assign,assignment]
        features, _, component_cols, _ = view.make_all_seasonality_features(df)
        if features.shape[1] == len(trained):
            return features, component_cols
    features, _, component_cols, _ = model.make_all_seasonality_features(df)
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
