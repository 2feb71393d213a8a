"""Training, prediction and the versioned model registry (Prophet; models stored as JSON+zstd)."""

import logging

from salescast.forecasting.activation import ActivationRule, ActiveModel
from salescast.forecasting.errors import (
    ForecastingError,
    HorizonError,
    InsufficientHistoryError,
    ModelVersionInUseError,
    ModelVersionNotFoundError,
    NoActiveModelError,
)
from salescast.forecasting.prediction import Forecast, ForecastPoint, make_forecast
from salescast.forecasting.registry import (
    BatchVersion,
    ModelRegistry,
    ModelVersionInfo,
    NewModelVersion,
    TrainingMark,
)
from salescast.forecasting.training import TrainedModel, TrainingParams, train_model

# Prophet logs an ERROR on import when plotly is missing; salescast draws its
# charts with matplotlib (forecasting.chart), never with Prophet's plotly plots.
# (Prophet itself is imported lazily, inside the functions that need it.)
logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)

__all__ = [
    "ActivationRule",
    "ActiveModel",
    "BatchVersion",
    "Forecast",
    "ForecastPoint",
    "ForecastingError",
    "HorizonError",
    "InsufficientHistoryError",
    "ModelRegistry",
    "ModelVersionInUseError",
    "ModelVersionInfo",
    "ModelVersionNotFoundError",
    "NewModelVersion",
    "NoActiveModelError",
    "TrainedModel",
    "TrainingMark",
    "TrainingParams",
    "make_forecast",
    "train_model",
]
