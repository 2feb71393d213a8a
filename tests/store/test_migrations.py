"""Schema versions: a database of the first schema is migrated in place, a newer one refused.

Every test runs on SQLite and PostgreSQL. The "old" database is made with the
frozen tables of schema version 1 (`schema_v1`), holding a product with two
trained versions, as a database written before model management existed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from salescast.forecasting import ModelRegistry, NewModelVersion
from salescast.store import Database, SalesStore
from salescast.store.migrations import SCHEMA_VERSION, SchemaVersionError
from salescast.store.urls import parse_database_url
from tests.conftest import unique_database_name
from tests.store import schema_v1, schema_v2
from tests.support.postgres_server import PostgresServer

NOW = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def old_engine(url: str) -> Engine:
    return create_engine(parse_database_url(url))


def make_v1_database(url: str) -> None:
    """Tables of schema version 1: product 'p' (data version 3) with versions 1 and 2, 2 active."""
    engine = old_engine(url)
    schema_v1.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            schema_v1.products.insert().values(
                id="p", data_version=3, active_version=2, created_at=NOW
            )
        )
        conn.execute(schema_v1.products.insert().values(id="q", data_version=1, created_at=NOW))
        for version in (1, 2):
            conn.execute(
                schema_v1.model_versions.insert().values(
                    product_id="p",
                    version=version,
                    created_at=NOW,
                    train_start=dt.date(2024, 1, 1),
                    train_end=dt.date(2024, 2, 29),
                    data_version=version + 1,
                    params={},
                    metrics={"mase": 1.0},
                    prophet_version="1.1.5",
                    model_format="test",
                    model_blob=b"model %d" % version,
                )
            )
    engine.dispose()


def columns(url: str) -> dict[str, dict[str, tuple[bool, bool]]]:
    """Per table, per column: (nullable, has a server default)."""
    engine = old_engine(url)
    try:
        found = inspect(engine)
        return {
            table: {
                c["name"]: (bool(c["nullable"]), c["default"] is not None)
                for c in found.get_columns(table)
            }
            for table in found.get_table_names()
        }
    finally:
        engine.dispose()


def schema_version(url: str) -> Any:
    engine = old_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version FROM schema_info")).scalar_one()
    finally:
        engine.dispose()


def a_version() -> NewModelVersion:
    return NewModelVersion(
        train_start=dt.date(2024, 1, 1),
        train_end=dt.date(2024, 3, 1),
        data_version=3,
        params={},
        metrics={"mase": 1.0},
        prophet_version="1.1.5",
        model_format="test",
        model_blob=b"model 3",
    )


def test_a_fresh_database_is_made_at_the_current_schema_version(database_url: str) -> None:
    Database(database_url).dispose()
    assert schema_version(database_url) == SCHEMA_VERSION
    assert {"pinned", "last_model_version", "frequency"} <= set(columns(database_url)["products"])
    assert "uq_model_versions_batch" in unique_indexes(database_url, "model_versions")


def test_a_version_1_database_is_migrated_and_keeps_its_versions(database_url: str) -> None:
    make_v1_database(database_url)
    database = Database(database_url)
    try:
        registry = ModelRegistry(database)
        versions = registry.list_versions("p")
        assert [(v.version, v.active, v.pinned) for v in versions] == [
            (1, False, False),
            (2, True, False),
        ]
        assert [v.not_activated_reason for v in versions] == [None, None]
        assert registry.get_model_blob("p", 1) == b"model 1"
        # Numbers already given stay taken: the next one follows the highest stored.
        assert registry.create_version("p", a_version()).version == 3
        assert registry.create_version("q", a_version()).version == 1
    finally:
        database.dispose()
    assert schema_version(database_url) == SCHEMA_VERSION


def test_a_migrated_database_has_the_columns_of_a_fresh_one(
    database_url: str, tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> None:
    make_v1_database(database_url)
    Database(database_url).dispose()
    if store_kind == "sqlite":
        fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
        Database(fresh_url).dispose()
        assert columns(database_url) == columns(fresh_url)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = unique_database_name()
    fresh_url = server.create_database(name)
    try:
        Database(fresh_url).dispose()
        assert columns(database_url) == columns(fresh_url)
    finally:
        server.drop_database(name)


def test_opening_a_migrated_database_again_changes_nothing(database_url: str) -> None:
    make_v1_database(database_url)
    Database(database_url).dispose()
    before = columns(database_url)
    database = Database(database_url)  # a second start: no column added twice
    try:
        assert ModelRegistry(database).get_active_version("p") == 2
    finally:
        database.dispose()
    assert columns(database_url) == before


def test_a_database_of_a_newer_schema_is_refused_and_left_as_it_was(database_url: str) -> None:
    Database(database_url).dispose()
    engine = old_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE schema_info SET version = :v"), {"v": SCHEMA_VERSION + 1})
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=f"schema is version {SCHEMA_VERSION + 1}"):
        Database(database_url)
    assert schema_version(database_url) == SCHEMA_VERSION + 1


def unique_indexes(url: str, table: str) -> dict[str, tuple[str, ...]]:
    engine = old_engine(url)
    try:
        return {
            str(index["name"]): tuple(str(c) for c in index["column_names"])
            for index in inspect(engine).get_indexes(table)
            if index["unique"]
        }
    finally:
        engine.dispose()


def test_a_migrated_database_keeps_one_version_per_product_per_batch(database_url: str) -> None:
    make_v1_database(database_url)
    database = Database(database_url)
    try:
        registry = ModelRegistry(database)
        first = registry.store_batch_version("p", a_version(), batch_id="job1")
        again = registry.store_batch_version("p", a_version(), batch_id="job1")
        assert (first.info.version, again.info.version, again.already_stored) == (3, 3, True)
        assert [v.batch_id for v in registry.list_versions("p")] == [None, None, "job1"]
    finally:
        database.dispose()
    assert unique_indexes(database_url, "model_versions") == {
        "uq_model_versions_batch": ("product_id", "batch_id")
    }


def make_v2_database(url: str) -> None:
    """Tables of schema version 2, with products whose dates are weekly, monthly, daily, odd."""
    fridays = [dt.date(2024, 1, 5) + dt.timedelta(weeks=i) for i in range(10)]
    series = {
        "weekly": fridays,
        "starts": [dt.date(2023, m, 1) for m in range(1, 13)],
        "ends": [dt.date(2023, m + 1, 1) - dt.timedelta(days=1) for m in range(1, 12)],
        "daily": [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(30) if i != 9],
        "odd": [*fridays, dt.date(2024, 1, 9)],  # a Tuesday among Fridays: stays daily
    }
    engine = old_engine(url)
    schema_v2.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(schema_v2.schema_info.insert().values(id=1, version=2))
        for product_id in [*series, "empty"]:
            conn.execute(
                schema_v2.products.insert().values(
                    id=product_id, data_version=1, pinned=False, last_model_version=0,
                    created_at=NOW,
                )
            )  # fmt: skip
        conn.execute(
            schema_v2.sales.insert(),
            [
                {"product_id": product_id, "day": day, "quantity": 1.0}
                for product_id, days in series.items()
                for day in days
            ],
        )
    engine.dispose()


def test_a_version_2_database_gets_each_products_frequency_from_its_dates(
    database_url: str,
) -> None:
    make_v2_database(database_url)
    database = Database(database_url)
    try:
        found = {p.product_id: p.frequency for p in SalesStore(database).list_products()}
    finally:
        database.dispose()
    assert found == {
        "weekly": "W-FRI",
        "starts": "MS",
        "ends": "ME",
        "daily": "D",
        "odd": "D",  # no pattern: daily, as it was trained until now
        "empty": "D",
    }
    assert schema_version(database_url) == SCHEMA_VERSION == 4
    assert "frequency" in columns(database_url)["products"]


def test_a_migrated_version_2_database_has_the_columns_of_a_fresh_one(
    database_url: str, tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> None:
    make_v2_database(database_url)
    Database(database_url).dispose()
    if store_kind == "sqlite":
        fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
        Database(fresh_url).dispose()
        assert columns(database_url) == columns(fresh_url)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = unique_database_name()
    fresh_url = server.create_database(name)
    try:
        Database(fresh_url).dispose()
        assert columns(database_url) == columns(fresh_url)
    finally:
        server.drop_database(name)
