"""Which products one many-product forecast covers, checked in full before any is read.

`POST /forecasts` and `salescast forecast --all` stream their answers: once
the first product's forecast has gone out, an HTTP status can no longer say
that a named product is unknown or untrained. So the whole list is checked
first, with one query, and every problem is reported together (404 or 409,
exit status 1) before a single forecast is read. What may still fail per
product while streaming (a busy compute gate, a store outage, a model that
does not decode) is a `BatchError`, reported next to the forecasts (see
`salescast.service.batch_output`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from salescast.compute_gate import ComputeBusyError
from salescast.forecasting import NoActiveModelError
from salescast.forecasting.errors import HorizonError
from salescast.forecasting.model_codec import ModelDecodeError
from salescast.store import ProductNotFoundError, StoreUnavailableError

MAX_BATCH_PRODUCTS = 1000
"""Most product ids one request may name; leaving them out covers every product, unbounded.

The answer is streamed, so the bound is not about memory: it keeps one
request's body and its up-front check small, and a list longer than this is
more likely a client bug than a wish (the all-products form is there for it).
"""

_IDS_SHOWN = 20


class UnknownProductsError(ProductNotFoundError):
    """Some of the named products have no sales stored (HTTP 404); lists all of them."""

    def __init__(self, product_ids: Sequence[str]) -> None:
        super().__init__(product_ids[0])
        self.args = (f"unknown products: {_listed(product_ids)}",)
        self.product_ids = list(product_ids)


class UntrainedProductsError(NoActiveModelError):
    """Some of the named products have no active model (HTTP 409); lists all of them."""

    def __init__(self, product_ids: Sequence[str]) -> None:
        super().__init__(product_ids[0])
        self.args = (
            f"products without a trained model: {_listed(product_ids)}; train them first "
            "(POST /train or `salescast train --all`), or leave product_ids out to get every "
            "product that has one",
        )
        self.product_ids = list(product_ids)


def plan_forecast_batch(
    active_versions: Mapping[str, int | None], product_ids: Sequence[str] | None
) -> list[str]:
    """The products to forecast, in answer order, from every product's active version.

    None means every product with an active model, by id; products without
    one are left out, since asking for "all" cannot mean "fail because one
    is not trained yet". Named ids are answered in the order given, each
    once (a repeated id is not an error: the first mention counts). Raises
    UnknownProductsError, then UntrainedProductsError, naming every
    offending id.
    """
    if product_ids is None:
        return sorted(p for p, version in active_versions.items() if version is not None)
    ids = list(dict.fromkeys(product_ids))
    unknown = [p for p in ids if p not in active_versions]
    if unknown:
        raise UnknownProductsError(unknown)
    untrained = [p for p in ids if active_versions[p] is None]
    if untrained:
        raise UntrainedProductsError(untrained)
    return ids


def _listed(product_ids: Sequence[str]) -> str:
    shown = ", ".join(repr(p) for p in product_ids[:_IDS_SHOWN])
    rest = len(product_ids) - _IDS_SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown


@dataclass(frozen=True)
class BatchError:
    """One product the stream could not answer after it began, and why.

    `status` is what the single-product route would have answered for it
    (429 busy, 503 store or model unreadable, 404/409 if the product changed
    since the up-front check), so a client can retry just those products.
    """

    product_id: str
    status: int
    detail: str


# Failures that concern one product's read and leave the others readable, with
# the status the single route answers; anything else is a bug and ends the stream.
_PER_PRODUCT_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ProductNotFoundError, 404),
    (NoActiveModelError, 409),
    (ComputeBusyError, 429),
    (ModelDecodeError, 503),
    (StoreUnavailableError, 503),
    # a horizon beyond this product's frequency's limit (e.g. 30 for a monthly one)
    (HorizonError, 422),
)
# As the single route's handler says it: what the decoder said is for the log.
_UNREADABLE_MODEL = "the stored model could not be read"


PER_PRODUCT_ERRORS: tuple[type[Exception], ...] = tuple(kind for kind, _ in _PER_PRODUCT_STATUS)
"""What a many-product stream reports for the product and goes on after (`batch_error`)."""


def batch_error(product_id: str, exc: Exception) -> BatchError:
    """The BatchError for a read of `product_id` that raised one of PER_PRODUCT_ERRORS."""
    status = next(code for kind, code in _PER_PRODUCT_STATUS if isinstance(exc, kind))
    detail = _UNREADABLE_MODEL if isinstance(exc, ModelDecodeError) else str(exc)
    return BatchError(product_id, status, detail)
