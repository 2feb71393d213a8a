"""Errors of training, the registry and prediction that callers turn into 404/409/422."""

from __future__ import annotations


class ForecastingError(Exception):
    """Base of the forecasting package's own errors."""


class InsufficientHistoryError(ForecastingError):
    """The product has fewer periods (days, weeks, months) of sales than a model needs."""

    def __init__(self, product_id: str, *, days: int, minimum: int, unit: str = "day") -> None:
        super().__init__(
            f"product {product_id!r} has {days} {unit}(s) of sales; "
            f"training needs at least {minimum}"
        )
        self.product_id = product_id
        self.days = days
        self.minimum = minimum
        self.unit = unit


class HorizonError(ForecastingError, ValueError):
    """A forecast horizon outside 1 .. the product's frequency's maximum (HTTP 422)."""

    def __init__(self, horizon: int, *, maximum: int, unit: str) -> None:
        super().__init__(
            f"horizon must be between 1 and {maximum} {unit}s for this product, got {horizon} "
            f"(a horizon counts the product's periods: {unit}s)"
        )
        self.horizon = horizon
        self.maximum = maximum
        self.unit = unit


class NoActiveModelError(ForecastingError):
    """The product exists but has no active model version yet."""

    def __init__(self, product_id: str) -> None:
        super().__init__(
            f"product {product_id!r} has no trained model; train it first "
            f"(POST /products/{product_id}/train or `salescast train --product {product_id}`)"
        )
        self.product_id = product_id


class ModelVersionNotFoundError(ForecastingError, LookupError):
    """No such version of this product's model."""

    def __init__(self, product_id: str, version: int) -> None:
        super().__init__(f"product {product_id!r} has no model version {version}")
        self.product_id = product_id
        self.version = version


class ModelVersionInUseError(ForecastingError):
    """The version is the product's active one (maybe pinned): it cannot be removed."""

    def __init__(self, product_id: str, version: int, *, pinned: bool) -> None:
        what = "the active and pinned version" if pinned else "the active version"
        super().__init__(
            f"version {version} is {what} of product {product_id!r} and cannot be deleted; "
            f"activate another version first (POST /products/{product_id}/models/VERSION/activate "
            f"or `salescast models activate {product_id} VERSION`)"
        )
        self.product_id = product_id
        self.version = version
        self.pinned = pinned
