"""Batched version reads on PostgreSQL: few queries, never an answer older than the call."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text, update

from salescast.forecasting import ModelRegistry
from salescast.store import Database, ProductNotFoundError, SalesStore
from salescast.store.database import BATCHED_READS_APPLICATION
from salescast.store.errors import StoreUnavailableError
from salescast.store.schema import Product
from tests.conftest import unique_database_name
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.postgresql

# A data-version read that stays in flight half a second (pg_sleep runs after
# the statement took its snapshot): long enough to act while it is sent.
SLOW_DATA_VERSIONS = text(
    "SELECT id, data_version FROM products, pg_sleep(0.5) WHERE id = ANY(:keys)"
)


@pytest.fixture
def db(postgres_server: PostgresServer) -> Iterator[Database]:
    """A PostgreSQL store holding products a (active v2, data v5) and b (no model, data v1)."""
    name = unique_database_name()
    database = Database(postgres_server.create_database(name))
    now = dt.datetime.now(dt.UTC)
    with database.session() as session:
        session.add(Product(id="a", data_version=5, active_version=2, created_at=now))
        session.add(Product(id="b", data_version=1, active_version=None, created_at=now))
    yield database
    database.dispose()
    postgres_server.drop_database(name)


def admin_query(db: Database, sql: str) -> list[tuple[Any, ...]]:
    """Run `sql` on a connection of its own (autocommit) and return its rows."""
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql)  # type: ignore[arg-type]  # test-made SQL, no user input
        return cursor.fetchall() if cursor.description else []


def batched_backends(db: Database, *, running: str | None = None) -> list[int]:
    """Pids of the batched reads' sessions on `db`'s database (only those running `running`)."""
    sql = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        f"AND application_name = '{BATCHED_READS_APPLICATION}'"
    )
    if running is not None:
        sql += f" AND state = 'active' AND query LIKE '%{running}%'"
    return [row[0] for row in admin_query(db, sql)]


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition` (a query on another connection) every 20 ms, for at most 10 s."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110  (no event to wait for: the state is the server's)
            await asyncio.sleep(0.02)


def test_concurrent_reads_on_one_loop_are_answered_by_few_queries(db: Database) -> None:
    registry, store = ModelRegistry(db), SalesStore(db)

    async def many() -> list[Any]:
        versions = [registry.aget_active_version(p) for p in ["a", "b"] * 20]
        data = [store.aget_data_version(p) for p in ["a", "b"] * 5]
        return await asyncio.gather(*versions, *data)

    answers = asyncio.run(many())

    assert answers == [2, None] * 20 + [5, 1] * 5
    stats = db.batched_read_stats
    assert stats.requests == 50
    assert stats.queries <= 2  # one per statement: every call was made before the first was sent
    assert stats.connections == 1


def test_a_read_made_while_a_batch_is_in_flight_sees_commits_made_before_it(
    db: Database,
) -> None:
    async def scenario() -> tuple[Any, Any]:
        first = asyncio.create_task(db.read_scalar_batched(SLOW_DATA_VERSIONS, "a"))
        await until(lambda: bool(batched_backends(db, running="pg_sleep")))
        # Committed after the first batch was sent, before the second call begins:
        # the first batch's snapshot cannot hold it, the second call must see it.
        with db.session() as session:
            session.execute(update(Product).where(Product.id == "a").values(data_version=6))
        assert not first.done()
        second = await db.read_scalar_batched(SLOW_DATA_VERSIONS, "a")
        return await first, second

    first, second = asyncio.run(scenario())

    assert (first, second) == (5, 6)
    assert db.batched_read_stats.queries == 2


def test_an_unknown_product_raises_product_not_found_and_spares_its_batch(db: Database) -> None:
    registry, store = ModelRegistry(db), SalesStore(db)

    async def reads() -> list[Any]:
        return await asyncio.gather(
            registry.aget_active_version("a"),
            registry.aget_active_version("nope"),
            store.aget_data_version("nope"),
            store.aget_data_version("b"),
            return_exceptions=True,
        )

    a, missing_version, missing_data, b = asyncio.run(reads())

    assert (a, b) == (2, 1)
    assert isinstance(missing_version, ProductNotFoundError)
    assert isinstance(missing_data, ProductNotFoundError)
    assert missing_version.product_id == missing_data.product_id == "nope"


def test_a_call_cancelled_while_waiting_leaves_its_batch_and_the_next_ones_alone(
    db: Database,
) -> None:
    async def scenario() -> tuple[Any, Any]:
        cancelled = asyncio.create_task(db.read_scalar_batched(SLOW_DATA_VERSIONS, "a"))
        kept = asyncio.create_task(db.read_scalar_batched(SLOW_DATA_VERSIONS, "b"))
        await until(lambda: bool(batched_backends(db, running="pg_sleep")))
        cancelled.cancel()
        answered = await asyncio.wait_for(kept, timeout=10)
        later = await asyncio.wait_for(ModelRegistry(db).aget_active_version("a"), timeout=10)
        return answered, later

    assert asyncio.run(scenario()) == (1, 2)


def test_a_terminated_connection_is_replaced_and_the_read_succeeds(db: Database) -> None:
    registry = ModelRegistry(db)

    async def scenario() -> tuple[Any, Any]:
        before = await registry.aget_active_version("a")
        (pid,) = batched_backends(db)
        admin_query(db, f"SELECT pg_terminate_backend({pid})")
        await until(lambda: pid not in batched_backends(db))
        with db.session() as session:
            session.execute(update(Product).where(Product.id == "a").values(active_version=3))
        return before, await registry.aget_active_version("a")

    assert asyncio.run(scenario()) == (2, 3)
    assert db.batched_read_stats.connections == 2


def test_a_stopped_server_fails_the_reads_promptly_and_a_restarted_one_answers_again() -> None:
    # Commits flushed at once: the kill below must not take the schema with it.
    with PostgresServer(settings={"synchronous_commit": "on"}) as server:
        db = Database(server.create_database("down"))
        with db.session() as session:
            session.add(Product(id="a", data_version=1, created_at=dt.datetime.now(dt.UTC)))
        store = SalesStore(db)

        async def read_all() -> list[Any]:
            reads = [store.aget_data_version("a") for _ in range(5)]
            return await asyncio.wait_for(asyncio.gather(*reads, return_exceptions=True), 10)

        async def scenario() -> tuple[list[Any], float, list[Any]]:
            await store.aget_data_version("a")  # the loop's connection is open
            server.kill()
            started = time.monotonic()
            down = await read_all()
            seconds = time.monotonic() - started
            server.start()
            return down, seconds, await read_all()

        try:
            down, seconds, back = asyncio.run(scenario())
        finally:
            db.dispose()

    assert all(isinstance(answer, StoreUnavailableError) for answer in down), down
    assert seconds < 5
    assert back == [1] * 5


def test_each_loop_reads_on_its_own_connection_closed_when_the_loop_ends(db: Database) -> None:
    registry = ModelRegistry(db)
    for _ in range(2):
        assert asyncio.run(registry.aget_active_version("a")) == 2
        assert batched_backends(db) == []  # closed as its loop shut down, not leaked
    assert db.batched_read_stats.connections == 2


def test_dispose_closes_the_connection_of_a_loop_running_in_another_thread(
    db: Database,
) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        read = asyncio.run_coroutine_threadsafe(ModelRegistry(db).aget_active_version("a"), loop)
        assert read.result(timeout=10) == 2
        assert len(batched_backends(db)) == 1

        db.dispose()

        deadline = time.monotonic() + 10
        while batched_backends(db) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert batched_backends(db) == []
        after = asyncio.run_coroutine_threadsafe(ModelRegistry(db).aget_active_version("a"), loop)
        with pytest.raises(RuntimeError, match="closed"):
            after.result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_a_read_the_store_does_not_answer_fails_after_its_timeout_and_the_next_one_works(
    db: Database,
) -> None:
    # Another session holds the products table: every read of it waits.
    db.batched_read_timeout_seconds = 0.5
    registry = ModelRegistry(db)
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def scenario() -> float:
        assert await registry.aget_active_version("a") == 2
        with psycopg.connect(url) as holder:
            holder.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match=r"no answer within 0\.5 s"):
                await registry.aget_active_version("a")
            waited = time.monotonic() - started
            holder.rollback()
        assert await registry.aget_active_version("a") == 2
        return waited

    waited = asyncio.run(scenario())
    assert 0.4 < waited < 5  # the timeout, not the lock, ended the wait
