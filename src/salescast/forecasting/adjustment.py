"""A correction of Prophet's points per version, chosen per product on the backtest window before.

On retail series Prophet's level lags the recent past, and its additive
seasonality keeps one amplitude while sales grow (#16). So, from the one fit
training makes anyway, each product gets candidates that differ only in
arithmetic on that fit's output (no other fit, no other model family):

- **seasonality**: Prophet's as fitted, or its seasonal and holiday terms
  scaled by the trend: ``trend + (yhat - trend) * trend / mean_trend``, where
  ``mean_trend`` is the fitted trend's mean over the training dates (a
  multiplicative seasonality read off the additive fit; the ratio is kept
  within 0 .. `MAX_TREND_RATIO`). Only an additive fit offers it (a
  multiplicative one is scaled by its trend already), and only a fit whose
  mean trend is positive; a version whose final fit cannot take the scaled
  form of its chosen candidate keeps that candidate's level term alone;
- **level**: none; plus the mean residual (actual - fitted, of that
  seasonality) of the last 28 or of the last 56 stored periods (rows: a gap
  makes them span more days); or, for daily series, the last 28 stored days'
  mean plus a per-weekday offset: the mean of the last 56 stored days'
  remaining residuals on that weekday, shrunk toward 0 by
  ``max(0, 1 - 2 se^2 / mean^2)`` (se: the standard error of that mean), so a
  weekday's noise adds nothing.

Daily products choose among all eight. Weekly and monthly ones keep Prophet's
points: the candidates were studied on daily data, and on the 70 M5 weekly
series a choice between the two seasonalities scored a mean MASE of 0.804
against Prophet's 0.786 (3 windows, 13 weeks each).

**The choice** (`choose`): each backtest window is forecast by the candidate
with the smallest error on the window before it (the first window by Prophet
as fitted), so the window a version reports (the last) is forecast by a choice
made on earlier data only. The version keeps the candidate with the smallest
error on the last window, with its correction computed from the final fit's
own residuals. Within one window every candidate's MASE has the same
denominator, so the smallest mean absolute error is the smallest MASE.

Why these and this rule: ``bench/quality_candidates.py`` (docs/benchmarks.md,
"Forecast quality"). Of the rules tried there, choosing on the window before
was the one that met #16's targets on M5 and on store-item together, and it
held on 100 store-item series the research never used.

A version stores its `PointAdjustment` (numbers and a name: data, never code)
in its metrics under `POINT_ADJUSTMENT`; its forecasts add ``apply(...) -
yhat`` to the point and to both bounds, so the band moves with the point and
keeps Prophet's (calibrated) width. A version stored before this existed, or
trained with ``SALESCAST_SELECT_CANDIDATES`` off, serves Prophet's points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

POINT_ADJUSTMENT = "point_adjustment"
"""The key of a version's metrics that holds its `PointAdjustment`."""

Level = Literal["none", "level 28", "level 56", "level 28 + weekday"]
LEVELS: tuple[Level, ...] = ("none", "level 28", "level 56", "level 28 + weekday")
_LEVEL_PERIODS: dict[Level, int] = {"level 28": 28, "level 56": 56, "level 28 + weekday": 28}
_WEEKDAY_PERIODS = 56
_SHRINK = 2.0  # an offset whose se^2 / mean^2 reaches 1 / _SHRINK counts for nothing

TAIL = 56
"""The most training periods (the last ones) any candidate's correction reads."""

MAX_TREND_RATIO = 10.0
"""The most a scaled seasonality is multiplied by (a trend ten times its training mean
says the trend, not the season, has run away)."""


@dataclass(frozen=True)
class Candidate:
    """One way to correct a fit's points: its seasonality and its level term."""

    scaled: bool  # seasonal terms scaled by trend / mean trend
    level: Level = "none"

    @property
    def name(self) -> str:
        seasonality = "seasonality x trend" if self.scaled else "prophet"
        return seasonality if self.level == "none" else f"{seasonality} + {self.level}"


PROPHET = Candidate(scaled=False)
"""Prophet's points as fitted: the first window's forecast, and the default."""


def candidates(freq: str, seasonality_mode: str = "additive") -> tuple[Candidate, ...]:
    """The candidates a product of frequency `freq`, fitted with `seasonality_mode`,
    chooses among, `PROPHET` first."""
    if freq != "D":
        return (PROPHET,)
    scalings = (False, True) if seasonality_mode == "additive" else (False,)
    return tuple(Candidate(scaled, level) for scaled in scalings for level in LEVELS)


@dataclass(frozen=True)
class FitOutput:
    """What a candidate reads of one fit: its last training periods and the periods ahead.

    `yhat` and `trend` are Prophet's, over the tail then the periods ahead;
    `weekdays` (Monday 0) likewise; `actual` is the tail's stored values.
    """

    actual: FloatArray
    yhat: FloatArray
    trend: FloatArray
    weekdays: npt.NDArray[np.int64]
    mean_trend: float  # the fitted trend's mean over every training date

    @property
    def tail(self) -> int:
        return len(self.actual)

    def ahead(self, adjustment: PointAdjustment) -> FloatArray:
        """The points ahead (after the tail), as `adjustment` corrects them."""
        tail = self.tail
        return adjustment.apply(self.yhat[tail:], self.trend[tail:], self.weekdays[tail:])


@dataclass(frozen=True)
class PointAdjustment:
    """A version's correction of Prophet's points (see the module); data only."""

    candidate: str
    mean_trend: float | None = None  # scale the seasonal terms by trend / mean_trend
    shift: float = 0.0
    weekday: tuple[float, ...] = ()  # Monday..Sunday offsets, or none

    @property
    def is_identity(self) -> bool:
        return self.mean_trend is None and self.shift == 0.0 and not self.weekday

    def apply(self, yhat: Any, trend: Any, weekdays: Any) -> FloatArray:
        """The corrected points of Prophet's `yhat` (with its `trend`, on dates of `weekdays`)."""
        points = np.asarray(yhat, dtype=float)
        if self.is_identity:
            return points
        if self.mean_trend is not None:
            trend = np.asarray(trend, dtype=float)
            ratio = np.clip(trend / self.mean_trend, 0.0, MAX_TREND_RATIO)
            points = trend + (points - trend) * ratio
        points = points + self.shift
        if self.weekday:
            points = points + np.asarray(self.weekday)[np.asarray(weekdays, dtype=int)]
        return points

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "mean_trend": self.mean_trend,
            "shift": self.shift,
            "weekday": list(self.weekday),
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> PointAdjustment | None:
        """What `to_dict` wrote; None for nothing stored or anything unusable (Prophet's
        points: a version's forecasts are never corrected by numbers that do not add up)."""
        if not isinstance(stored, Mapping):
            return None
        try:
            candidate = str(stored["candidate"])
            raw_trend = stored["mean_trend"]
            mean_trend = None if raw_trend is None else float(raw_trend)
            shift = float(stored["shift"])
            weekday = tuple(float(value) for value in stored["weekday"])
        except (KeyError, TypeError, ValueError):
            return None
        usable = (
            (mean_trend is None or (math.isfinite(mean_trend) and mean_trend > 0))
            and math.isfinite(shift)
            and len(weekday) in (0, 7)
            and all(math.isfinite(value) for value in weekday)
        )
        return cls(candidate, mean_trend, shift, weekday) if usable else None


def adjustment_for(candidate: Candidate, fit: FitOutput) -> PointAdjustment | None:
    """The correction `candidate` makes of `fit`, from its tail's residuals; None when the
    candidate does not apply (a seasonality scaled by a trend whose mean is not positive)."""
    if candidate.scaled and not fit.mean_trend > 0:
        return None
    mean_trend = fit.mean_trend if candidate.scaled else None
    if candidate.level == "none":
        return PointAdjustment(candidate.name, mean_trend)
    tail = fit.tail
    fitted = PointAdjustment("", mean_trend).apply(
        fit.yhat[:tail], fit.trend[:tail], fit.weekdays[:tail]
    )
    residuals = fit.actual - fitted
    shift = float(residuals[-_LEVEL_PERIODS[candidate.level] :].mean())
    weekday: tuple[float, ...] = ()
    if candidate.level == "level 28 + weekday":
        recent = residuals[-_WEEKDAY_PERIODS:] - shift
        days = fit.weekdays[:tail][-_WEEKDAY_PERIODS:]
        weekday = tuple(_shrunk_mean(recent[days == day]) for day in range(7))
    return PointAdjustment(candidate.name, mean_trend, shift, weekday)


def adjustment_or_unscaled(candidate: Candidate, fit: FitOutput) -> PointAdjustment:
    """`adjustment_for(candidate, fit)`, or, where the scaled seasonality does not apply
    to `fit`, the same level term on the seasonality as fitted."""
    found = adjustment_for(candidate, fit)
    if found is None:
        found = adjustment_for(Candidate(False, candidate.level), fit)
    assert found is not None  # the seasonality as fitted applies to every fit
    return found


def _shrunk_mean(values: FloatArray) -> float:
    if len(values) < 2:
        return 0.0
    mean = float(values.mean())
    se2 = float(values.var(ddof=1)) / len(values)
    return max(0.0, 1.0 - _SHRINK * se2 / max(mean * mean, 1e-12)) * mean


def errors(
    fit: FitOutput, actual: FloatArray, order: Sequence[Candidate]
) -> dict[Candidate, float]:
    """Every applicable candidate of `order`'s mean absolute error on the periods ahead
    (`actual`)."""
    out = {}
    for candidate in order:
        adjustment = adjustment_for(candidate, fit)
        if adjustment is not None:
            out[candidate] = float(np.mean(np.abs(actual - fit.ahead(adjustment))))
    return out


def choose(errors_by_candidate: Mapping[Candidate, float], order: Sequence[Candidate]) -> Candidate:
    """The candidate with the smallest error (the first of `order` among equals); `PROPHET`
    when none has a finite error."""
    finite = [c for c in order if math.isfinite(errors_by_candidate.get(c, math.inf))]
    return min(finite, key=lambda c: errors_by_candidate[c]) if finite else PROPHET
