"""Which products a many-product forecast covers: `plan_forecast_batch` on its own."""

from __future__ import annotations

import pytest

from salescast.forecasting import NoActiveModelError
from salescast.service.forecast_batches import (
    UnknownProductsError,
    UntrainedProductsError,
    plan_forecast_batch,
)
from salescast.store import ProductNotFoundError

ACTIVE = {"b": 2, "a": 1, "new": None, "c": 7}


def test_no_list_means_every_product_with_an_active_version_by_id() -> None:
    assert plan_forecast_batch(ACTIVE, None) == ["a", "b", "c"]


def test_a_list_is_kept_in_its_order_with_each_id_once() -> None:
    assert plan_forecast_batch(ACTIVE, ["c", "a", "c", "b", "a"]) == ["c", "a", "b"]


def test_unknown_ids_are_all_named_before_untrained_ones() -> None:
    with pytest.raises(UnknownProductsError) as caught:
        plan_forecast_batch(ACTIVE, ["new", "x", "a", "y"])
    assert str(caught.value) == "unknown products: 'x', 'y'"
    assert caught.value.product_ids == ["x", "y"]
    assert isinstance(caught.value, ProductNotFoundError)  # answered 404 like one unknown id


def test_untrained_ids_are_all_named_with_a_hint_to_train() -> None:
    with pytest.raises(UntrainedProductsError) as caught:
        plan_forecast_batch({**ACTIVE, "newer": None}, ["a", "new", "newer"])
    assert str(caught.value).startswith("products without a trained model: 'new', 'newer'; train")
    assert isinstance(caught.value, NoActiveModelError)  # answered 409 like one untrained id


def test_a_long_list_of_unknown_ids_is_cut_to_twenty_and_a_count() -> None:
    ids = [f"p{i:02}" for i in range(25)]
    with pytest.raises(UnknownProductsError) as caught:
        plan_forecast_batch(ACTIVE, ids)
    message = str(caught.value)
    assert message.endswith("'p19' and 5 more")
    assert "'p20'" not in message
    assert caught.value.product_ids == ids
