"""Errors the store raises for conditions a caller can act on."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's own errors."""


class ProductNotFoundError(StoreError, LookupError):
    """No product with this id has any sales stored."""

    def __init__(self, product_id: str) -> None:
        super().__init__(f"unknown product {product_id!r}")
        self.product_id = product_id


class StoreUnavailableError(StoreError):
    """The database did not answer (down, restarting, connection lost, or locked too long).

    Nothing was changed by the call that raised it; it can be tried again later.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the store is not answering ({reason}); try again shortly")
        self.reason = reason

    @classmethod
    def of(cls, exc: BaseException | None) -> StoreUnavailableError:
        """The error for a driver's exception: its class and the first line of its message."""
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
        return cls(f"{type(exc).__name__}: {first_line}")
