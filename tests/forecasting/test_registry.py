"""ModelRegistry: numbering, activation, rollback, and no half-written active version."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from salescast.forecasting import ModelVersionNotFoundError, NewModelVersion
from salescast.service import SalescastService
from salescast.store import ProductNotFoundError

PRODUCT = "CA_1-HOBBIES_1"


def a_version(blob: bytes = b"model") -> NewModelVersion:
    return NewModelVersion(
        train_start=dt.date(2024, 1, 1),
        train_end=dt.date(2024, 3, 1),
        data_version=1,
        params={},
        metrics={"mase": 1.0},
        prophet_version="1.5.0",
        model_format="test",
        model_blob=blob,
    )


def test_each_training_adds_the_next_version_and_activates_it(
    demo_service: SalescastService,
) -> None:
    info = demo_service.train_product(PRODUCT)
    assert info.version == 2
    assert info.active
    versions = demo_service.list_models(PRODUCT)
    assert [(v.version, v.active) for v in versions] == [(1, False), (2, True)]
    assert demo_service.store.get_product(PRODUCT).active_version == 2


def test_rolling_back_serves_forecasts_from_the_older_version(
    demo_service: SalescastService,
) -> None:
    demo_service.train_product(PRODUCT)
    demo_service.activate_model(PRODUCT, 1)
    assert demo_service.predict_sales(PRODUCT, 7)["model_version"] == 1
    assert demo_service.load_model(PRODUCT).version == 1


def test_activating_a_missing_version_changes_nothing(demo_service: SalescastService) -> None:
    with pytest.raises(ModelVersionNotFoundError):
        demo_service.activate_model(PRODUCT, 9)
    assert demo_service.registry.get_active_version(PRODUCT) == 1


def test_versions_of_an_unknown_product_raise_not_found(demo_service: SalescastService) -> None:
    with pytest.raises(ProductNotFoundError):
        demo_service.list_models("nope")


def test_a_failed_write_leaves_no_version_and_the_old_one_active(
    demo_service: SalescastService,
) -> None:
    broken = a_version(blob=None)  # type: ignore[arg-type]  # NOT NULL violated mid-write
    with pytest.raises(IntegrityError):
        demo_service.registry.create_version(PRODUCT, broken)
    assert [v.version for v in demo_service.list_models(PRODUCT)] == [1]
    assert demo_service.registry.get_active_version(PRODUCT) == 1


def test_a_version_can_be_stored_without_activating_it(demo_service: SalescastService) -> None:
    info = demo_service.registry.create_version(PRODUCT, a_version(), activate=False)
    assert (info.version, info.active) == (2, False)
    assert demo_service.registry.get_active_version(PRODUCT) == 1
    assert demo_service.registry.get_model_blob(PRODUCT, 2) == b"model"


def test_a_versions_trained_at_time_is_its_stored_created_at_and_never_changes(
    demo_service: SalescastService,
) -> None:
    registry = demo_service.registry
    stored = registry.create_version(PRODUCT, a_version())
    assert registry.get_trained_at(PRODUCT, stored.version) == stored.created_at
    assert stored.created_at.utcoffset() == dt.timedelta(0)
    registry.activate(PRODUCT, 1)  # activating another version leaves it as it was
    assert registry.get_trained_at(PRODUCT, stored.version) == stored.created_at
    for product, version in [(PRODUCT, 99), (PRODUCT, 0), ("nope", 1)]:
        with pytest.raises(ModelVersionNotFoundError):
            registry.get_trained_at(product, version)


def test_a_version_stored_before_the_fit_backend_setting_reads_as_fitted_by_cmdstan(
    demo_service: SalescastService,
) -> None:
    old = dataclasses.replace(a_version(), params={"holdout_days": 28})
    info = demo_service.registry.create_version(PRODUCT, old, activate=False)
    assert info.params == {"holdout_days": 28, "fit_backend": "cmdstan"}
    listed = {v.version: v for v in demo_service.list_models(PRODUCT)}
    assert listed[info.version].params["fit_backend"] == "cmdstan"
    assert listed[1].params["fit_backend"] == "numpy"  # the demo's, trained by this salescast
    mark = demo_service.registry.list_training_marks()[PRODUCT]
    assert mark.latest_params == {"holdout_days": 28, "fit_backend": "cmdstan"}
    # So a bulk training does not take it for one made with today's settings.
    [summary] = demo_service.train_products([PRODUCT])
    assert summary.outcome != "skipped"
