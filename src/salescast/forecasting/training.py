"""Fit one Prophet model on one product's daily history, with a holdout backtest."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from salescast.forecasting.backtest import BacktestMetrics, score_holdout, split_holdout
from salescast.forecasting.errors import InsufficientHistoryError

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
    # How the posterior mode is found: in this process (map_fit.MapFitBackend) or by
    # a CmdStan process per fit, Prophet's default. Same model; see docs/benchmarks.md.
    fit_backend: FitBackend = "numpy"

    def __post_init__(self) -> None:
        # The fit without the holdout still needs two full weeks for the weekly
        # seasonality and for the seasonal-naive scale of MASE.
        if self.min_history_days < self.holdout_days + 14:
            raise ValueError(
                f"min_history_days ({self.min_history_days}) must be at least "
                f"holdout_days + 14 ({self.holdout_days + 14})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainedModel:
    model: Prophet
    train_start: dt.date
    train_end: dt.date
    sales_days: int
    metrics: BacktestMetrics


def train_model(
    product_id: str,
    days: list[dt.date],
    quantities: list[float],
    params: TrainingParams,
) -> TrainedModel:
    """Backtest on the last `holdout_days`, then fit the model to keep on the whole history.

    Days missing from the history stay missing: Prophet fits on the days it is
    given, so a gap (a closed store, a lost file) is not taught as zero sales.
    Raises InsufficientHistoryError when fewer than `min_history_days` days are stored.
    """
    if len(days) < params.min_history_days:
        raise InsufficientHistoryError(product_id, days=len(days), minimum=params.min_history_days)
    series = dict(zip(days, quantities, strict=True))
    cut = split_holdout(days, params.holdout_days)
    train_part = dict(zip(days[:cut], quantities[:cut], strict=True))
    backtest_model = fit_prophet(days[:cut], quantities[:cut], params, uncertainty_samples=0)
    holdout_days = days[cut:]
    predicted = _point_forecast(backtest_model, holdout_days)
    metrics = score_holdout(train_part, {d: series[d] for d in holdout_days}, predicted)
    model = fit_prophet(days, quantities, params)
    return TrainedModel(
        model=model,
        train_start=days[0],
        train_end=days[-1],
        sales_days=len(days),
        metrics=metrics,
    )


def fit_prophet(
    days: list[dt.date],
    quantities: list[float],
    params: TrainingParams,
    *,
    uncertainty_samples: int | None = None,
) -> Prophet:
    """A fitted Prophet model, fitted in-process or by CmdStan as `params.fit_backend` says.

    With CmdStan, Stan's temporary files are removed before returning: cmdstanpy
    writes a CSV and logs per fit into one process-wide temp folder and never
    deletes them (a process training 500 models left ~500 files), so each fit
    here gets its own folder, removed as soon as the fit is read back.
    """
    from prophet import Prophet

    _quiet_cmdstanpy()
    model = Prophet(
        interval_width=params.interval_width,
        seasonality_mode=params.seasonality_mode,
        yearly_seasonality=_toggle(params.yearly_seasonality),
        weekly_seasonality=_toggle(params.weekly_seasonality),
        daily_seasonality=False,  # daily data has no intra-day cycle to learn
        uncertainty_samples=(
            params.uncertainty_samples if uncertainty_samples is None else uncertainty_samples
        ),
    )
    if params.holidays_country:
        model.add_country_holidays(country_name=params.holidays_country)
    frame = pd.DataFrame({"ds": pd.to_datetime(days), "y": quantities})
    if params.fit_backend == "numpy":
        from salescast.forecasting.map_fit import MapFitBackend

        model.stan_backend = MapFitBackend()
        return model.fit(frame)
    with tempfile.TemporaryDirectory(prefix="salescast-stan-") as output_dir:
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


def _point_forecast(model: Prophet, days: list[dt.date]) -> dict[dt.date, float]:
    frame = model.predict(pd.DataFrame({"ds": pd.to_datetime(days)}))
    return {d: float(v) for d, v in zip(days, frame["yhat"], strict=True)}


def _toggle(value: Toggle) -> Literal["auto"] | int:
    if value == "auto":
        return "auto"
    return value == "on"
