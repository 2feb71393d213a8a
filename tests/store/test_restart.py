"""A PostgreSQL restart or dropped connections under load cost at most the requests in flight.

The server here is the test's own (restarting the session's shared one would
disturb other tests), and the service is a real `salescast serve` with two
uvicorn workers, so every kind of connection is met: pooled sessions, the
per-thread connections of the version read, and writes.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from salescast.service import SalescastService
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.reliability.servers import server_env
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import free_port
from tests.support.uvicorn_server import UvicornServer

pytestmark = pytest.mark.postgresql

LOAD_THREADS = 4
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    path: str
    status: int  # 0: no HTTP answer at all (connection error or timeout)


@pytest.fixture(scope="module")
def restartable() -> Iterator[tuple[PostgresServer, str, list[str]]]:
    """An own PostgreSQL server holding the demo sales, two products trained."""
    with PostgresServer() as server:
        url = server.create_database("restart")
        service = SalescastService(make_settings(url))
        service.load_demo_if_empty()
        products = service.store.list_product_ids()[:2]
        service.train_products(products)
        service.close()
        yield server, url, products


@pytest.fixture
def live(restartable: tuple[PostgresServer, str, list[str]]) -> Iterator[UvicornServer]:
    _, url, _ = restartable
    with UvicornServer(server_env(url), workers=2) as server:
        yield server


def run_load(base: str, products: list[str], stop: threading.Event, answers: list[Answer]) -> None:
    """Reads (forecast, products, history) and appends of new days, until `stop`."""
    lock = threading.Lock()
    run = uuid.uuid4().hex[:8]  # appends of this run never meet an earlier run's days

    def worker(number: int) -> None:
        day = dt.date(2030, 1, 1) + dt.timedelta(days=number * 100_000 // LOAD_THREADS)
        with httpx.Client(base_url=base, timeout=15) as client:
            step = 0
            while not stop.is_set():
                step += 1
                product = products[step % len(products)]
                if step % 4 == 0:
                    day += dt.timedelta(days=1)
                    path, body = "/sales", f"product_id,date,quantity\nLOAD{run}-{number},{day},1\n"
                    request = client.build_request(
                        "POST", path, content=body, headers={**AUTH, "Content-Type": "text/csv"}
                    )
                elif step % 4 == 1:
                    path = f"/products/{product}/sales"
                    request = client.build_request("GET", path)
                elif step % 4 == 2:
                    path = "/products"
                    request = client.build_request("GET", path)
                else:
                    path = f"/products/{product}/forecast?horizon=7"
                    request = client.build_request("GET", path)
                started = time.monotonic()
                try:
                    status = client.send(request).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    answers.append(Answer(started, time.monotonic(), path, status))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(timeout=30)


def terminate_connections(server: PostgresServer) -> None:
    """End every session of the service's database, as a failover or an idle timeout does."""
    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = 'restart' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert ended is not None
    assert ended[0] > 0


@pytest.mark.parametrize("fault", ["restart", "terminated connections"])
def test_a_fault_under_load_fails_no_request_sent_after_the_database_is_back(
    restartable: tuple[PostgresServer, str, list[str]], live: UvicornServer, fault: str
) -> None:
    server, _, products = restartable
    stop = threading.Event()
    answers: list[Answer] = []
    load = threading.Thread(target=run_load, args=(live.url, products, stop, answers))
    load.start()
    try:
        time.sleep(2.0)  # load on every connection of both workers before the fault
        down = time.monotonic()
        if fault == "restart":
            server.restart()
        else:
            terminate_connections(server)
        back = time.monotonic()
        time.sleep(3.0)
    finally:
        stop.set()
        load.join(timeout=60)

    before = [a for a in answers if a.ended < down]
    after = [a for a in answers if a.started > back]
    failed_after = [a for a in after if not 200 <= a.status < 300]
    assert before
    assert all(200 <= a.status < 300 for a in before), before[:5]
    assert len(after) >= 20, f"only {len(after)} requests after the {fault}"
    assert failed_after == [], failed_after[:10]
    # Requests in flight during the restart may fail, but as 503 "try again", never a 500.
    assert not [a for a in answers if a.status >= 500 and a.status != 503], live.log_text()[-3000:]
    assert {a.path.split("?")[0].rsplit("/", 1)[-1] for a in after} >= {"forecast", "sales"}


def test_readyz_and_requests_say_503_while_the_database_is_down_and_recover_after(
    restartable: tuple[PostgresServer, str, list[str]], live: UvicornServer
) -> None:
    server, _, products = restartable
    forecast = f"/products/{products[0]}/forecast?horizon=7"
    with httpx.Client(base_url=live.url, timeout=15) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get(forecast).status_code == 200

        server.kill()
        try:
            ready = client.get("/readyz")
            listing = client.get("/products")
        finally:
            server.start()

        assert ready.status_code == 503
        assert ready.json()["store"] == "error"
        assert listing.status_code == 503
        assert "the store is not answering" in listing.json()["detail"]
        assert listing.headers["Retry-After"] == "1"
        assert client.get("/readyz").status_code == 200
        assert client.get("/products").status_code == 200
        assert client.get(forecast).status_code == 200


def test_a_database_that_does_not_answer_at_start_up_is_a_one_line_error() -> None:
    nobody = f"postgresql://postgres:pw@127.0.0.1:{free_port()}/salescast"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}

    done = subprocess.run(
        [sys.executable, "-m", "salescast", "products"],
        env={**env, "SALESCAST_DATABASE_URL": nobody},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.startswith("salescast: the store is not answering"), done.stderr
    assert "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
