"""Forecast intervals that cover what they say: Prophet's band, widened or narrowed per product
by how it did on the backtest windows (split-conformal scaling).

Prophet's band comes from simulated futures: its trend changes and Normal
observation noise. On retail series it is too narrow (the default 80 % band
covered 72 % of the M5 holdout actuals): the noise is not Normal, and the
model's own errors are not in it. So each version measures, on its backtest
windows (fits that never saw those periods), how far outside or inside its
band the actuals fell, and scales the band by that much.

For one window point with actual `y`, point forecast `yhat` and Prophet's band
`[lower, upper]` at the reference width `REFERENCE` (80 %), the score is the
error in half-widths on the side the actual fell: `(y - yhat) / (upper - yhat)`
above, `(yhat - y) / (yhat - lower)` below (a point with a zero half-width on
its side is not scored). The factor for a width `w` is the conformal quantile
of the `n` scores, the `ceil((n + 1) * w)`-th smallest (Vovk et al. 2005;
Angelopoulos & Bates 2021, section 1.1; with the reference band as the scale,
Lei et al. 2018's locally weighted form), or the largest when that rank passes
`n`. A served band `w` wide is then `yhat - f(w) * (yhat - lower)` ..
`yhat + f(w) * (upper - yhat)` around the reference band: the points do not
move (a version's correction of its points, `salescast.forecasting.adjustment`,
moves point and band together, after the scaling), and the band keeps its
asymmetry and its growth over the horizon.

Every width is scaled from the same reference band, and the factors are
quantiles of one set of scores, so they grow with the width: a wider interval
is never narrower on any date. (Scaling each width's own Prophet band by a
factor learnt for it did not nest: on some dates the wider band was a few per
cent narrower.) For the same reason a calibrated version's forecasts of one
horizon draw their futures once, whatever the width
(`salescast.forecasting.prediction.make_forecast`).

Factors are measured at `LEVELS` (10 % to 99 %); another width takes the linear
interpolation between the two around it, a width below 10 % the interpolation
between 10 %'s factor and a band of no width at 0, and a width above 99 % that
level's factor. The factors are stored with the version (in its metrics,
`interval_calibration`), so a version's forecasts are a function of the version
and the arguments, as before (`salescast.forecasting.sampling`). A version
trained before calibration existed, or with `SALESCAST_CALIBRATE_INTERVALS`
off, serves Prophet's band unscaled, drawn as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INTERVAL_CALIBRATION = "interval_calibration"
"""The key of a version's metrics that holds its `IntervalCalibration`."""

LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
"""Interval widths the factors are measured at (a narrower width is interpolated toward a
band of zero width at 0; a wider one takes the widest level's factor)."""

REFERENCE = 0.8
"""The width of Prophet's band that every calibrated band is scaled from."""

# A band scaled by more than this (or less than its inverse) says the backtest had
# too few points to learn from, not that the model is that far off.
_MAX_FACTOR = 20.0


@dataclass(frozen=True)
class IntervalCalibration:
    """The scale factor of the `reference` band for each of `levels`, learnt from `points`
    window points (non-decreasing: a wider interval is scaled at least as much)."""

    levels: tuple[float, ...]
    factors: tuple[float, ...]
    points: int
    reference: float = REFERENCE

    def factor(self, interval: float) -> float:
        """The scale of the reference band for a band `interval` wide: interpolated between
        the measured levels, and toward 0 (no width) below the narrowest one."""
        return float(np.interp(interval, (0.0, *self.levels), (0.0, *self.factors)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "levels": list(self.levels),
            "factors": list(self.factors),
            "points": self.points,
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> IntervalCalibration | None:
        """What `to_dict` wrote; None for nothing stored (or anything else: Prophet's band)."""
        if not isinstance(stored, Mapping):
            return None
        try:
            reference = float(stored["reference"])
            levels = tuple(float(level) for level in stored["levels"])
            factors = tuple(float(factor) for factor in stored["factors"])
            points = int(stored["points"])
        except (KeyError, TypeError, ValueError):
            return None
        usable = (
            0 < reference < 1
            and levels
            and len(levels) == len(factors)
            and list(levels) == sorted(levels)
            and all(math.isfinite(f) and f > 0 for f in factors)
            and list(factors) == sorted(factors)
        )
        return cls(levels, factors, points, reference) if usable else None


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

    def scores(self, reference: float = REFERENCE) -> list[float]:
        """The points' errors in half-widths of the `reference` band (see the module)."""
        lower, upper = self.band(reference)
        above = self.actual >= self.yhat
        half = np.where(above, upper - self.yhat, self.yhat - lower)
        error = np.abs(self.actual - self.yhat)
        scored = half > 0
        return [float(value) for value in error[scored] / half[scored]]

    def coverage(self, interval: float, calibration: IntervalCalibration | None = None) -> float:
        """Share of the actuals inside the band `interval` wide: Prophet's, or the one served
        with `calibration` (its reference band scaled by its factor for `interval`)."""
        if calibration is None:
            lower, upper = self.band(interval)
        else:
            band = self.band(calibration.reference)
            lower, upper = scale_band(self.yhat, *band, calibration.factor(interval))
        inside = (self.actual >= lower) & (self.actual <= upper)
        return float(np.mean(inside))


def calibrate(windows: Sequence[WindowBands]) -> IntervalCalibration | None:
    """The factors the `windows` support; None without a scored point (no band to scale)."""
    scores = sorted(score for window in windows for score in window.scores(REFERENCE))
    if not scores:
        return None
    factors = []
    for level in LEVELS:
        rank = min(len(scores), math.ceil((len(scores) + 1) * level))
        factors.append(min(max(scores[rank - 1], 1 / _MAX_FACTOR), _MAX_FACTOR))
    return IntervalCalibration(LEVELS, tuple(factors), len(scores), REFERENCE)


def scale_band(
    yhat: Any, lower: Any, upper: Any, factor: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The band `lower`..`upper` around `yhat`, each side `factor` times as wide."""
    yhat, lower, upper = (np.asarray(values, dtype=float) for values in (yhat, lower, upper))
    return yhat - factor * (yhat - lower), yhat + factor * (upper - yhat)
