"""Forecasts from the active model: shape, dates, intervals, and no mutation of the model."""

from __future__ import annotations

import datetime as dt

import pytest

from salescast.forecasting.prediction import predict_points
from salescast.service import SalescastService

PRODUCT = "CA_1-FOODS_3"


def test_forecast_starts_the_day_after_training_and_has_horizon_points(
    demo_service: SalescastService,
) -> None:
    forecast = demo_service.predict_sales(PRODUCT, 14, 0.8)
    assert forecast["model_version"] == 1
    assert forecast["horizon"] == 14
    dates = [dt.date.fromisoformat(p["ds"]) for p in forecast["points"]]
    assert dates[0] == dt.date(2016, 4, 25)
    assert dates == [dates[0] + dt.timedelta(days=i) for i in range(14)]
    for p in forecast["points"]:
        assert p["yhat_lower"] <= p["yhat"] <= p["yhat_upper"]


def test_a_wider_interval_gives_wider_bounds_without_changing_the_shared_model(
    demo_service: SalescastService,
) -> None:
    model = demo_service.load_model(PRODUCT).model
    narrow = predict_points(model, horizon=30, interval=0.5, seed=1)
    wide = predict_points(model, horizon=30, interval=0.95, seed=1)
    width = sum(p["yhat_upper"] - p["yhat_lower"] for p in narrow)
    assert sum(p["yhat_upper"] - p["yhat_lower"] for p in wide) > width
    assert model.interval_width == 0.8  # the instance a cache may share is untouched


@pytest.mark.parametrize(("horizon", "interval"), [(0, 0.8), (731, 0.8), (7, 0.0), (7, 1.0)])
def test_out_of_range_arguments_are_refused(
    demo_service: SalescastService, horizon: int, interval: float
) -> None:
    model = demo_service.load_model(PRODUCT).model
    with pytest.raises(ValueError, match="must be between"):
        predict_points(model, horizon=horizon, interval=interval, seed=1)
