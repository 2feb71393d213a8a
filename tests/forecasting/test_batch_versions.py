"""One version per product per batch: the registry and the store's unique index enforce it.

Runs on SQLite and PostgreSQL (the demo store fixtures), each product with one
trained version (1) to begin with.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from salescast.forecasting import NewModelVersion
from salescast.service import SalescastService
from salescast.store.schema import ModelVersion

PRODUCT = "CA_1-HOBBIES_1"
BATCH = "b" * 32


def a_version(blob: bytes) -> NewModelVersion:
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


def test_a_batch_result_stored_twice_keeps_the_first_version_and_says_so(
    demo_service: SalescastService,
) -> None:
    registry = demo_service.registry
    first = registry.store_batch_version(PRODUCT, a_version(b"first"), batch_id=BATCH)
    again = registry.store_batch_version(PRODUCT, a_version(b"second"), batch_id=BATCH)
    assert (first.already_stored, again.already_stored) == (False, True)
    assert first.info.version == again.info.version == 2
    assert again.info.batch_id == BATCH
    assert again.info.active
    assert [v.version for v in registry.list_versions(PRODUCT)] == [1, 2]
    assert registry.get_model_blob(PRODUCT, 2) == b"first"
    # The number the duplicate would have taken is still free.
    assert registry.create_version(PRODUCT, a_version(b"alone")).version == 3


def test_each_batch_gets_its_own_version_and_single_trainings_are_not_limited(
    demo_service: SalescastService,
) -> None:
    registry = demo_service.registry
    registry.store_batch_version(PRODUCT, a_version(b"a"), batch_id="a" * 32)
    registry.store_batch_version(PRODUCT, a_version(b"b"), batch_id=BATCH)
    registry.create_version(PRODUCT, a_version(b"c"))
    registry.create_version(PRODUCT, a_version(b"d"))
    versions = registry.list_versions(PRODUCT)
    assert [(v.version, v.batch_id) for v in versions[1:]] == [  # 1: the demo's own batch
        (2, "a" * 32),
        (3, BATCH),
        (4, None),
        (5, None),
    ]


def test_the_store_refuses_a_second_row_of_one_batch_written_around_the_registry(
    demo_service: SalescastService,
) -> None:
    demo_service.registry.store_batch_version(PRODUCT, a_version(b"first"), batch_id=BATCH)
    row = {
        "product_id": PRODUCT,
        "version": 99,
        "created_at": dt.datetime.now(dt.UTC),
        "train_start": dt.date(2024, 1, 1),
        "train_end": dt.date(2024, 3, 1),
        "data_version": 1,
        "params": {},
        "metrics": {},
        "prophet_version": "1.5.0",
        "model_format": "test",
        "model_blob": b"sneaked",
        "batch_id": BATCH,
    }
    with pytest.raises(IntegrityError), demo_service.database.session() as session:
        session.execute(insert(ModelVersion).values(**row))
    assert [v.version for v in demo_service.list_models(PRODUCT)] == [1, 2]


def test_two_writers_of_one_batch_at_once_store_one_version(
    demo_service: SalescastService,
) -> None:
    registry = demo_service.registry
    start = threading.Barrier(4)
    found: list[tuple[int, bool]] = []

    def write(blob: bytes) -> None:
        start.wait(10)
        stored = registry.store_batch_version(PRODUCT, a_version(blob), batch_id=BATCH)
        found.append((stored.info.version, stored.already_stored))

    threads = [threading.Thread(target=write, args=(b"w%d" % i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(found) == [(2, False), (2, True), (2, True), (2, True)]
    assert [v.version for v in registry.list_versions(PRODUCT)] == [1, 2]


@pytest.mark.parametrize("batch_id", ["", "x" * 65])
def test_a_batch_id_outside_the_column_is_refused_before_writing(
    demo_service: SalescastService, batch_id: str
) -> None:
    with pytest.raises(ValueError, match="batch id"):
        demo_service.registry.store_batch_version(PRODUCT, a_version(b"x"), batch_id=batch_id)
    assert [v.version for v in demo_service.list_models(PRODUCT)] == [1]
