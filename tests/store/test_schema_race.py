"""Workers that start at once on an empty database all come up (one creates the schema)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from salescast.store import Database
from tests.conftest import unique_database_name
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.postgresql
ROUNDS = 5


def open_store(url: str, barrier: Any) -> str:
    barrier.wait(timeout=30)
    try:
        Database(url).dispose()
    except Exception as exc:  # reported, so the test shows what went wrong
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    context = mp.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(4, mp_context=context) as pool:
        yield pool, manager


def test_four_workers_opening_an_empty_database_at_once_all_start(
    postgres_server: PostgresServer, workers: tuple[ProcessPoolExecutor, Any]
) -> None:
    pool, manager = workers
    for _ in range(ROUNDS):
        name = unique_database_name()
        url = postgres_server.create_database(name)
        barrier = manager.Barrier(4)

        outcomes = [
            f.result(timeout=120) for f in [pool.submit(open_store, url, barrier) for _ in range(4)]
        ]

        assert outcomes == ["ok"] * 4
        postgres_server.drop_database(name)
