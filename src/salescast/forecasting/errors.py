"""Errors of training, the registry and prediction that callers turn into 404/409/422."""

from __future__ import annotations


class ForecastingError(Exception):
    """Base of the forecasting package's own errors."""


class InsufficientHistoryError(ForecastingError):
    """The product has fewer days of sales than a model needs."""

    def __init__(self, product_id: str, *, days: int, minimum: int) -> None:
        super().__init__(
            f"product {product_id!r} has {days} day(s) of sales; training needs at least {minimum}"
        )
        self.product_id = product_id
        self.days = days
        self.minimum = minimum


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
