"""Forecast intervals that cover what they say: Prophet's band, widened or narrowed per product
by how it did on the backtest windows (split-conformal scaling).

Prophet's band comes from simulated futures: its trend changes and Normal
observation noise. On retail series it is too narrow (the default 80 % band
covered 72 % of the M5 holdout actuals): the noise is not Normal, and the
model's own errors are not in it. So each version measures, on its backtest
windows (fits that never saw those periods), how far outside or inside its
band the actuals fell, and scales the band by that much.

For one window point with actual `y`, point forecast `yhat` and Prophet's band
`[lower, upper]` at level `w`, the score is the error in half-widths on the
side the actual fell: `(y - yhat) / (upper - yhat)` above, `(yhat - y) /
(yhat - lower)` below (a point with a zero half-width on its side is not
scored). The factor for `w` is the conformal quantile of the `n` scores, the
`ceil((n + 1) * w)`-th smallest (Vovk et al. 2005; Angelopoulos & Bates 2021,
section 1.1), or the largest when that rank passes `n`. A served band at `w` is
then `yhat - f * (yhat - lower)` .. `yhat + f * (upper - yhat)`: the points stay
Prophet's, and the band keeps its asymmetry.

Factors are measured at `LEVELS`; another level takes the linear
interpolation between the two around it, and a level outside them the
nearest one's factor. The factors are stored with the version (in its metrics,
`interval_calibration`), so a version's forecasts are a function of the version
and the arguments, as before (`salescast.forecasting.sampling`). A version
trained before calibration existed, or with `SALESCAST_CALIBRATE_INTERVALS`
off, serves Prophet's band unscaled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INTERVAL_CALIBRATION = "interval_calibration"
"""The key of a version's metrics that holds its `IntervalCalibration`."""

LEVELS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
"""Interval widths the factors are measured at."""

# A band scaled by more than this (or less than its inverse) says the backtest had
# too few points to learn from, not that the model is that far off.
_MAX_FACTOR = 20.0


@dataclass(frozen=True)
class IntervalCalibration:
    """The band's scale factor at each of `levels`, learnt from `points` window points."""

    levels: tuple[float, ...]
    factors: tuple[float, ...]
    points: int

    def factor(self, interval: float) -> float:
        """The scale for a band `interval` wide (interpolated between the measured levels)."""
        return float(np.interp(interval, self.levels, self.factors))

    def to_dict(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "factors": list(self.factors), "points": self.points}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> IntervalCalibration | None:
        """What `to_dict` wrote; None for nothing stored (or anything else: Prophet's band)."""
        if not isinstance(stored, Mapping):
            return None
        try:
            levels = tuple(float(level) for level in stored["levels"])
            factors = tuple(float(factor) for factor in stored["factors"])
            points = int(stored["points"])
        except (KeyError, TypeError, ValueError):
            return None
        if not levels or len(levels) != len(factors) or list(levels) != sorted(levels):
            return None
        return cls(levels, factors, points)


@dataclass(frozen=True)
class WindowBands:
    """One backtest window's point forecasts and simulated futures (dates x futures)."""

    actual: np.ndarray[Any, Any]
    yhat: np.ndarray[Any, Any]
    futures: np.ndarray[Any, Any]
    # each band is computed once: calibrate() reads every earlier window's again
    _bands: dict[float, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def band(self, interval: float) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Prophet's band `interval` wide, as `predict` computes it (NaN-tolerant percentiles)."""
        found = self._bands.get(interval)
        if found is None:
            percents = [100 * (1.0 - interval) / 2, 100 * (1.0 + interval) / 2]
            # nanpercentile goes row by row in Python; without a NaN it is percentile
            rank = np.nanpercentile if np.isnan(self.futures).any() else np.percentile
            lower, upper = rank(self.futures, percents, axis=1)
            found = self._bands[interval] = (lower, upper)
        return found

    def scores(self, interval: float) -> list[float]:
        """The points' errors in half-widths of the band `interval` wide (see the module)."""
        lower, upper = self.band(interval)
        above = self.actual >= self.yhat
        half = np.where(above, upper - self.yhat, self.yhat - lower)
        error = np.abs(self.actual - self.yhat)
        scored = half > 0
        return [float(value) for value in error[scored] / half[scored]]

    def coverage(self, interval: float, factor: float = 1.0) -> float:
        """Share of the actuals inside the band `interval` wide, scaled by `factor`."""
        lower, upper = scale_band(self.yhat, *self.band(interval), factor)
        inside = (self.actual >= lower) & (self.actual <= upper)
        return float(np.mean(inside))


def calibrate(windows: Sequence[WindowBands]) -> IntervalCalibration | None:
    """The factors the `windows` support; None without a scored point (no band to scale)."""
    factors = []
    points = 0
    for level in LEVELS:
        scores = sorted(score for window in windows for score in window.scores(level))
        if not scores:
            return None
        points = max(points, len(scores))
        rank = min(len(scores), math.ceil((len(scores) + 1) * level))
        factors.append(min(max(scores[rank - 1], 1 / _MAX_FACTOR), _MAX_FACTOR))
    return IntervalCalibration(LEVELS, tuple(factors), points)


def scale_band(
    yhat: Any, lower: Any, upper: Any, factor: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The band `lower`..`upper` around `yhat`, each side `factor` times as wide."""
    yhat, lower, upper = (np.asarray(values, dtype=float) for values in (yhat, lower, upper))
    return yhat - factor * (yhat - lower), yhat + factor * (upper - yhat)
