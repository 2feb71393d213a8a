"""Database: the per-thread fast read path sees every commit and survives a closed store."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pytest
from sqlalchemy import bindparam, select, update

from salescast.service import SalescastService
from salescast.store import Database
from salescast.store.schema import Product
from tests.store.test_sales_store import COLUMNS, csv_of

DATA_VERSION = select(Product.data_version).where(Product.id == bindparam("pid"))


def test_fast_reads_see_a_commit_made_on_another_connection(service: SalescastService) -> None:
    service.ingest_csv(csv_of("2024-01-01,a,1"), columns=COLUMNS)
    db = service.database
    assert db.read_scalar(DATA_VERSION, {"pid": "a"}) == 1
    with db.session() as session:
        session.execute(update(Product).where(Product.id == "a").values(data_version=7))
    assert db.read_scalar(DATA_VERSION, {"pid": "a"}) == 7
    assert db.read_scalar(DATA_VERSION, {"pid": "missing"}) is None


def test_each_thread_reads_on_its_own_connection_and_dispose_closes_them(
    database_url: str,
) -> None:
    db = Database(database_url)
    with db.session() as session:
        session.add(Product(id="p", data_version=3, created_at=dt.datetime.now(dt.UTC)))
    results: list[object] = []
    all_read = threading.Barrier(4)

    def read() -> None:
        results.append(db.read_scalar(DATA_VERSION, {"pid": "p"}))
        all_read.wait(10)  # alive until every thread has its connection

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [3, 3, 3, 3]
    assert len(db._read_connections) == 4
    db.dispose()  # closes every thread's connection: no ResourceWarning under filterwarnings=error
    assert db._read_connections == []


def test_the_read_connections_of_ended_threads_are_closed_when_a_new_thread_reads(
    database_url: str,
) -> None:
    # A thread pool ends idle threads and starts new ones: their connections
    # must not pile up (on PostgreSQL, toward max_connections).
    db = Database(database_url)
    with db.session() as session:
        session.add(Product(id="p", data_version=3, created_at=dt.datetime.now(dt.UTC)))
    for _ in range(5):
        thread = threading.Thread(target=db.read_scalar, args=(DATA_VERSION, {"pid": "p"}))
        thread.start()
        thread.join()
    ended = [connection for connection, _lock, _thread in db._read_connections]

    assert db.read_scalar(DATA_VERSION, {"pid": "p"}) == 3  # this thread's first read

    assert len(db._read_connections) == 1
    assert len(ended) == 1  # each new thread had closed the one before it
    assert ended[0].driver_connection is None or getattr(ended[0], "is_valid", True) is False
    db.dispose()


def test_a_session_still_open_when_the_store_is_disposed_is_closed_when_it_ends(
    database_url: str,
) -> None:
    # A forecast computed on a worker thread while the app shuts down: its
    # connection goes back to the discarded pool after `dispose`.
    db = Database(database_url)
    checked_out = threading.Event()
    disposed = threading.Event()
    raw: list[object] = []

    def work() -> None:
        with db.session() as session:
            raw.append(session.connection().connection.driver_connection)
            checked_out.set()
            disposed.wait(10)

    thread = threading.Thread(target=work)
    thread.start()
    assert checked_out.wait(10)
    db.dispose()
    disposed.set()
    thread.join(10)

    [connection] = raw
    closed = getattr(connection, "closed", None)  # psycopg: a bool
    if closed is None:  # sqlite3: a closed connection refuses to run anything
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            connection.execute("SELECT 1")  # type: ignore[attr-defined]
    else:
        assert closed is True


def test_a_read_whose_connection_died_without_a_word_is_made_again(
    database_url: str, store_kind: str
) -> None:
    # A socket that died (a firewall dropped it, the server host vanished)
    # fails with no SQLSTATE; psycopg only marks the connection broken.
    if store_kind != "postgresql":
        pytest.skip("sqlite3 has no socket to lose")
    db = Database(database_url)
    with db.session() as session:
        session.add(Product(id="p", data_version=3, created_at=dt.datetime.now(dt.UTC)))
    assert db.read_scalar(DATA_VERSION, {"pid": "p"}) == 3
    own = db._local.connection.driver_connection  # this thread's read connection
    own.pgconn.finish()  # the socket closes under psycopg's feet

    assert db.read_scalar(DATA_VERSION, {"pid": "p"}) == 3
    db.dispose()
