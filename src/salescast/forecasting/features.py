"""Prophet's seasonality features, built without its per-call pandas overhead.

Every Prophet fit and prediction builds a feature matrix (the Fourier terms of
each seasonality, the holidays, the extra regressors) and a binary matrix
saying which feature column belongs to which component (weekly, yearly, the
additive and multiplicative totals): ``make_all_seasonality_features`` and,
inside it, ``regressor_column_matrix``. On a 5-year daily series the two took
about 14 ms of a 26 ms numpy fit, most of it building small DataFrames and a
``pd.crosstab``; a product's training does it five times for the fits (four
backtest windows and the final fit) and again for each window's forecast.

- `seasonality_features` builds the features of a model with seasonalities
  only (no holidays, no extra regressors, no conditional seasonality: every
  salescast model without ``SALESCAST_HOLIDAYS_COUNTRY``) by Prophet's
  ``fourier_series`` arithmetic on numpy arrays (the days since the epoch
  computed once, not a pandas operation per term), in one array, columns named
  and ordered as Prophet names and orders them; any other model gets Prophet's
  method.
- The component matrix depends on the feature columns' names, the training
  holidays, the components' modes and the extra regressors, never on the dates
  or the values; it is read from a small per-process table keyed by exactly
  those, and built by Prophet's own method on a miss.

`fast_features` installs both on one model for the length of a block (a fit);
predictions call `seasonality_features` with the fit's own matrix. The tests
compare every output with Prophet's, and the fits made with and without it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from prophet import Prophet

Modes = dict[Literal["additive", "multiplicative"], list[str]]
Features = tuple[pd.DataFrame, list[float], pd.DataFrame, Modes]
"""What ``Prophet.make_all_seasonality_features`` returns: the features, their prior
scales, the component matrix and the components of each mode."""

_MAX_ENTRIES = 64  # configurations (a holiday set each); cleared when full
_matrices: dict[tuple[Any, ...], tuple[pd.DataFrame, Modes]] = {}
_lock = threading.Lock()


def seasonality_features(
    model: Prophet, df: pd.DataFrame, component_cols: pd.DataFrame | None = None
) -> Features:
    """``model.make_all_seasonality_features(df)``, by the fast path when the model has
    seasonalities only; `component_cols` given (a fitted model's ``train_component_cols``)
    stands for the component matrix when it has one column per feature."""
    if not _seasonalities_only(model):
        return _prophet_features(model, df, component_cols)
    blocks: list[np.ndarray[Any, Any]] = []
    priors: list[float] = []
    columns: list[str] = []
    fresh: Modes = {"additive": [], "multiplicative": []}
    days = _days_since_epoch(df["ds"])
    for name, props in model.seasonalities.items():
        block = _fourier_series(days, props["period"], props["fourier_order"])
        blocks.append(block)
        priors.extend([props["prior_scale"]] * block.shape[1])
        columns.extend(f"{name}_delim_{i + 1}" for i in range(block.shape[1]))
        fresh[props["mode"]].append(name)
    if not blocks:  # Prophet's dummy column, so that X is never empty
        blocks.append(np.zeros((df.shape[0], 1)))
        priors.append(1.0)
        columns.append("zeros")
    features = pd.DataFrame(np.hstack(blocks), columns=columns)
    if component_cols is not None and len(component_cols) == features.shape[1]:
        return features, priors, component_cols, fresh
    matrix, extended = _component_matrix(model, features, fresh)
    return features, priors, matrix, extended


def _prophet_features(
    model: Prophet, df: pd.DataFrame, component_cols: pd.DataFrame | None
) -> Features:
    from prophet import Prophet

    view = model
    if component_cols is not None:
        view = copy.copy(model)
        view.regressor_column_matrix = lambda _features, modes: (component_cols, modes)  # type: ignore[method-assign,assignment]
    found = Prophet.make_all_seasonality_features(view, df)
    if component_cols is None or found[0].shape[1] == len(component_cols):
        return found
    return Prophet.make_all_seasonality_features(model, df)


def _days_since_epoch(dates: pd.Series[pd.Timestamp]) -> np.ndarray[Any, Any]:
    """Prophet's `t` of ``fourier_series``, computed once for every seasonality."""
    epoch = pd.Timestamp("1970-01-01", tz=dates.dt.tz)
    days = (dates - epoch).dt.total_seconds() / (24 * 60 * 60)
    return np.asarray(days.to_numpy(dtype=float))


def _fourier_series(days: np.ndarray[Any, Any], period: float, order: int) -> np.ndarray[Any, Any]:
    """``Prophet.fourier_series`` on numpy arrays, the same operations in the same order
    (so the same bits), without a pandas operation per term."""
    if not order >= 1:
        raise ValueError("series_order must be >= 1")
    x_t = np.pi * 2 * days
    components = np.empty((days.shape[0], 2 * order))
    for i in range(order):
        c = (i + 1) / period * x_t
        components[:, 2 * i] = np.sin(c)
        components[:, 2 * i + 1] = np.cos(c)
    return components


@contextmanager
def fast_features(model: Prophet) -> Iterator[None]:
    """Within the block, `model` builds its features by `seasonality_features` and reads
    its component matrix from the table (see the module); afterwards it has Prophet's
    own methods again."""

    def make_all_seasonality_features(df: pd.DataFrame) -> Features:
        return seasonality_features(model, df)

    def regressor_column_matrix(features: pd.DataFrame, modes: Modes) -> tuple[pd.DataFrame, Modes]:
        return _component_matrix(model, features, modes)

    model.make_all_seasonality_features = make_all_seasonality_features  # type: ignore[method-assign]
    model.regressor_column_matrix = regressor_column_matrix  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        del model.make_all_seasonality_features
        del model.regressor_column_matrix


def _seasonalities_only(model: Prophet) -> bool:
    return (
        model.holidays is None
        and model.country_holidays is None
        and not model.extra_regressors
        and all(props["condition_name"] is None for props in model.seasonalities.values())
    )


def _component_matrix(
    model: Prophet, features: pd.DataFrame, modes: Modes
) -> tuple[pd.DataFrame, Modes]:
    """``Prophet.regressor_column_matrix``, from the table when this configuration's is there."""
    from prophet import Prophet

    holidays = model.train_holiday_names
    key = (
        tuple(features.columns),
        None if holidays is None else tuple(holidays),
        tuple((mode, tuple(names)) for mode, names in sorted(modes.items())),
        model.seasonality_mode,
        model.holidays_mode,
        tuple(sorted((name, props["mode"]) for name, props in model.extra_regressors.items())),
    )
    with _lock:
        cached = _matrices.get(key)
    if cached is None:
        built = Prophet.regressor_column_matrix(model, features, copy.deepcopy(modes))
        with _lock:
            if len(_matrices) >= _MAX_ENTRIES:
                _matrices.clear()
            _matrices[key] = cached = built
    matrix, extended = cached
    return matrix.copy(), copy.deepcopy(extended)
