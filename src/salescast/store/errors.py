"""Errors the store raises for conditions a caller can act on."""


class StoreError(Exception):
    """Base of the store's own errors."""


class ProductNotFoundError(StoreError, LookupError):
    """No product with this id has any sales stored."""

    def __init__(self, product_id: str) -> None:
        super().__init__(f"unknown product {product_id!r}")
        self.product_id = product_id
