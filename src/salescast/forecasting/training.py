"""Fit one Prophet model on one product's history (daily, weekly or monthly), with a holdout
backtest in the product's own periods."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from salescast.config import TRAINING_PERIODS_BEYOND_HOLDOUT
from salescast.forecasting.adjustment import (
    PROPHET,
    TAIL,
    Candidate,
    FitOutput,
    PointAdjustment,
    adjustment_or_unscaled,
    candidates,
    choose,
    errors,
)
from salescast.forecasting.backtest import (
    BacktestMetrics,
    rolling_backtest,
    score_holdout,
    window_cuts,
)
from salescast.forecasting.calibration import IntervalCalibration, WindowBands, calibrate
from salescast.forecasting.errors import InsufficientHistoryError
from salescast.forecasting.features import fast_features
from salescast.forecasting.sampling import (
    backtest_futures,
    fitted_points,
    fitted_trend_mean,
    forecast_seed,
)
from salescast.store.frequency import PeriodUnit, unit_of

if TYPE_CHECKING:
    from prophet import Prophet

Toggle = Literal["auto", "on", "off"]
FitBackend = Literal["numpy", "cmdstan"]


@dataclass(frozen=True)
class TrainingParams:
    """Everything that shapes a model; stored with each version so it can be reproduced."""

    holidays_country: str | None = None
    interval_width: float = 0.8
    seasonality_mode: Literal["additive", "multiplicative"] = "additive"
    yearly_seasonality: Toggle = "auto"
    weekly_seasonality: Toggle = "auto"
    holdout_days: int = 28
    min_history_days: int = 60
    uncertainty_samples: int = 1000
    holdout_weeks: int = 13
    min_history_weeks: int = 66
    holdout_months: int = 6
    min_history_months: int = 24
    # How the posterior mode is found: in this process (map_fit.MapFitBackend) or by
    # a CmdStan process per fit, Prophet's default. Same model; see docs/benchmarks.md.
    fit_backend: FitBackend = "numpy"
    # The rolling-origin backtest: how many holdouts, one before the other, each
    # version is scored on; and whether their errors set the bands' width.
    backtest_windows: int = 4
    calibrate_intervals: bool = True
    # Whether each version keeps the correction of Prophet's points that did best on
    # its last backtest window (salescast.forecasting.adjustment).
    select_candidates: bool = True

    def __post_init__(self) -> None:
        if self.backtest_windows < 1:
            raise ValueError(f"backtest_windows must be at least 1, got {self.backtest_windows}")
        for unit, beyond in TRAINING_PERIODS_BEYOND_HOLDOUT.items():
            holdout, minimum = self.holdout(unit), self.min_history(unit)
            if minimum < holdout + beyond:
                raise ValueError(
                    f"min_history_{unit}s ({minimum}) must be at least "
                    f"holdout_{unit}s + {beyond} ({holdout + beyond})"
                )

    def holdout(self, unit: PeriodUnit) -> int:
        """Periods of `unit` the backtest holds out."""
        return int(getattr(self, f"holdout_{unit}s"))

    def min_history(self, unit: PeriodUnit) -> int:
        """Stored periods of `unit` a product needs to be trained."""
        return int(getattr(self, f"min_history_{unit}s"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> tuple[TrainingParams, str]:
        """The parameters and the product frequency a version stored (`batch.version_params`),
        to reproduce its model.

        Versions trained before frequencies existed stored no `frequency` and no
        weekly or monthly settings: they were daily fits, and the fields they
        lack take their defaults. Keys this salescast does not know are ignored.
        """
        known = {f.name for f in fields(cls)}
        params = cls(**{name: value for name, value in stored.items() if name in known})
        return params, str(stored.get("frequency", "D"))


@dataclass(frozen=True)
class TrainedModel:
    model: Prophet
    train_start: dt.date
    train_end: dt.date
    sales_days: int
    metrics: BacktestMetrics
    calibration: IntervalCalibration | None = None  # stored with the version's metrics
    adjustment: PointAdjustment | None = None  # likewise; None: Prophet's points


def train_model(
    product_id: str,
    days: list[dt.date],
    quantities: list[float],
    params: TrainingParams,
    *,
    freq: str = "D",
) -> TrainedModel:
    """Backtest on rolling origins, then fit the model to keep on the whole history.

    `days` are the series' dates in order, one per period of `freq` (the
    product's frequency). Periods missing from the history stay missing:
    Prophet fits on the dates it is given, so a gap (a closed store, a lost
    file) is not taught as zero sales. Raises InsufficientHistoryError when
    fewer periods than the frequency's minimum are stored.

    The backtest (`backtest.window_cuts`) fits the model without each of the
    last `params.backtest_windows` holdouts in turn and scores it on that
    holdout: point errors, and how many actuals fell inside the interval. With
    `params.select_candidates`, each window is forecast by the correction of
    Prophet's points that did best on the window before it, and the version
    keeps the one that did best on the last window
    (`salescast.forecasting.adjustment`). With `params.calibrate_intervals`,
    the windows' errors also set how much the version's forecast bands are
    widened or narrowed (`salescast.forecasting.calibration`); each window's
    coverage of the served band is measured with the factors learnt from the
    windows before it only, so no window is scored with what it taught.
    """
    unit = unit_of(freq)
    minimum = params.min_history(unit)
    if len(days) < minimum:
        raise InsufficientHistoryError(product_id, days=len(days), minimum=minimum, unit=unit)
    holdout = params.holdout(unit)
    cuts = window_cuts(days, holdout, params.backtest_windows, minimum - holdout, freq)
    scored: list[BacktestMetrics] = []
    bands: list[WindowBands] = []
    order = candidates(freq, params.seasonality_mode)
    chosen = PROPHET
    for start, end in cuts:
        window = _backtest_window(product_id, days[:end], quantities[:end], start, params, freq)
        served = window.served(chosen)
        learnt = calibrate(bands) if params.calibrate_intervals and bands else None
        scored.append(served.scores(params, learnt, calibrating=params.calibrate_intervals))
        if served.bands is not None:
            bands.append(served.bands)
        if params.select_candidates:
            chosen = choose(window.errors(order), order)
    metrics = rolling_backtest(scored) if len(cuts) > 1 else scored[-1]
    model = fit_prophet(days, quantities, params, freq=freq)
    calibration = calibrate(bands) if params.calibrate_intervals else None
    adjustment = None
    if params.select_candidates:
        final = _fit_output(model, days, quantities, len(days))[0]
        adjustment = adjustment_or_unscaled(chosen, final)
    return TrainedModel(
        model=model,
        train_start=days[0],
        train_end=days[-1],
        sales_days=len(days),
        metrics=metrics,
        calibration=calibration,
        adjustment=adjustment,
    )


_AS_FITTED = PointAdjustment(PROPHET.name)


@dataclass(frozen=True)
class _Window:
    """One backtest window: the training part, the window's actuals and what the fit said."""

    train: dict[dt.date, float]
    actual: dict[dt.date, float]
    fit: FitOutput  # the fit's points over the training tail and the window
    futures: np.ndarray | None  # the window's dates x futures; None: no interval
    freq: str
    holdout: int
    adjustment: PointAdjustment = _AS_FITTED  # what corrects the points it serves

    @cached_property
    def actual_values(self) -> np.ndarray:
        return np.fromiter(self.actual.values(), float)

    @cached_property
    def predicted(self) -> np.ndarray:
        return self.fit.ahead(self.adjustment)

    @cached_property
    def bands(self) -> WindowBands | None:
        """The window's futures, moved with the point by the correction it serves."""
        if self.futures is None:
            return None
        predicted = self.predicted
        moved = self.futures + (predicted - self.fit.yhat[self.fit.tail :])[:, None]
        return WindowBands(self.actual_values, predicted, moved)

    def errors(self, order: Sequence[Candidate]) -> dict[Candidate, float]:
        return errors(self.fit, self.actual_values, order)

    def served(self, candidate: Candidate) -> _Window:
        """This window forecast by `candidate` (its level term alone where its scaled
        seasonality does not apply to this fit)."""
        return replace(self, adjustment=adjustment_or_unscaled(candidate, self.fit))

    def scores(
        self, params: TrainingParams, learnt: IntervalCalibration | None, *, calibrating: bool
    ) -> BacktestMetrics:
        predicted = dict(zip(self.actual, self.predicted.tolist(), strict=True))
        metrics = score_holdout(
            self.train, self.actual, predicted, freq=self.freq, holdout=self.holdout
        )
        metrics = replace(metrics, candidate=self.adjustment.candidate)
        bands = self.bands
        if bands is None:
            return metrics
        width = params.interval_width
        prophet = bands.coverage(width)
        served: float | None = prophet
        if calibrating:
            served = bands.coverage(width, learnt) if learnt else None
        return replace(metrics, interval=width, coverage=served, coverage_prophet=prophet)


def _backtest_window(
    product_id: str,
    days: list[dt.date],
    quantities: list[float],
    start: int,
    params: TrainingParams,
    freq: str,
) -> _Window:
    """Fit on `days[:start]`, forecast `days[start:]` with its simulated futures."""
    model = fit_prophet(days[:start], quantities[:start], params, freq=freq)
    seed = forecast_seed(product_id, 0, len(days), params.interval_width)  # 0: no version yet
    fit, futures = _fit_output(model, days, quantities, start, np.random.default_rng(seed))
    return _Window(
        train=dict(zip(days[:start], quantities[:start], strict=True)),
        actual=dict(zip(days[start:], quantities[start:], strict=True)),
        fit=fit,
        futures=futures,
        freq=freq,
        holdout=params.holdout(unit_of(freq)),
    )


def _fit_output(
    model: Prophet,
    days: list[dt.date],
    quantities: list[float],
    start: int,
    rng: np.random.Generator | None = None,
) -> tuple[FitOutput, np.ndarray | None]:
    """What the candidates read of `model` (fit on `days[:start]`): its points over the last
    `adjustment.TAIL` training dates and over `days[start:]`; and the futures of
    `days[start:]` drawn from `rng` (None without one, or without an interval)."""
    first = max(0, start - TAIL)
    frame = pd.DataFrame({"ds": pd.to_datetime(days[first:])})
    futures = None
    if rng is None:
        yhat, trend = fitted_points(model, frame)
    else:
        forecast = backtest_futures(model, frame, rng, history=start - first)
        yhat, trend, futures = forecast.yhat, forecast.trend, forecast.futures
    output = FitOutput(
        actual=np.asarray(quantities[first:start], dtype=float),
        yhat=yhat,
        trend=trend,
        weekdays=np.array([day.weekday() for day in days[first:]], dtype=np.int64),
        mean_trend=fitted_trend_mean(model),
    )
    return output, futures


def fit_prophet(
    days: list[dt.date],
    quantities: list[float],
    params: TrainingParams,
    *,
    freq: str = "D",
    uncertainty_samples: int | None = None,
) -> Prophet:
    """A fitted Prophet model, fitted in-process or by CmdStan as `params.fit_backend` says.

    A weekly or monthly series has one point per period, so there is no
    weekly (nor daily) cycle to learn from it, and holidays, dated by day,
    fall between its points: only its yearly seasonality is fitted, on unless
    the setting says off (Prophet's own advice for monthly data; its "auto"
    would wait for two years of history). Daily series follow the settings.

    Either way the fit builds its seasonality features by
    `salescast.forecasting.features` (the same features, without Prophet's
    per-call pandas overhead).

    With CmdStan, Stan's temporary files are removed before returning: cmdstanpy
    writes a CSV and logs per fit into one process-wide temp folder and never
    deletes them (a process training 500 models left ~500 files), so each fit
    here gets its own folder, removed as soon as the fit is read back.
    """
    from prophet import Prophet

    _quiet_cmdstanpy()
    daily = freq == "D"
    model = Prophet(
        interval_width=params.interval_width,
        seasonality_mode=params.seasonality_mode,
        yearly_seasonality=(
            _toggle(params.yearly_seasonality) if daily else params.yearly_seasonality != "off"
        ),
        weekly_seasonality=_toggle(params.weekly_seasonality) if daily else False,
        daily_seasonality=False,  # no series here has an intra-day cycle to learn
        uncertainty_samples=(
            params.uncertainty_samples if uncertainty_samples is None else uncertainty_samples
        ),
    )
    if params.holidays_country and daily:
        model.add_country_holidays(country_name=params.holidays_country)
    frame = pd.DataFrame({"ds": pd.to_datetime(days), "y": quantities})
    if params.fit_backend == "numpy":
        from salescast.forecasting.map_fit import MapFitBackend

        model.stan_backend = MapFitBackend()
        with fast_features(model):
            return model.fit(frame)
    with tempfile.TemporaryDirectory(prefix="salescast-stan-") as output_dir:
        with fast_features(model):
            model.fit(frame, output_dir=output_dir)
        if model.stan_backend is not None:
            model.stan_backend.cleanup()
    return model


def _quiet_cmdstanpy() -> None:
    # cmdstanpy installs a DEBUG-level stderr handler unless its logger already
    # has one, then logs two INFO lines per fit: 1,000 lines for 500 products.
    logger = logging.getLogger("cmdstanpy")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.WARNING)


def _toggle(value: Toggle) -> Literal["auto"] | int:
    if value == "auto":
        return "auto"
    return value == "on"
