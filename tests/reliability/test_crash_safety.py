"""SIGKILL a real server mid-training and mid-ingest; after a restart the store is whole.

The server is a real `salescast serve` subprocess (tests/support/uvicorn_server.py)
over a private copy of the trained demo store: for the training kill, on SQLite
and on PostgreSQL; for the ingest kill, on a SQLite file only, since the moment
of the kill is read from the growth of SQLite's WAL file. SIGKILL goes to the
server's whole process group: no shutdown handler, no rollback, no flush runs.
After the restart:

- an ingest is in the store entirely or not at all (rows of table `sales`, every
  product's data version);
- every product's active version names a version that exists, every stored
  version's model decodes (no partial versions), and every trained product
  answers `GET /products/{id}/forecast` with 200 from its active version.
"""

from __future__ import annotations

import http.client
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import text

from salescast.forecasting.model_codec import decode_model
from salescast.forecasting.registry import ModelRegistry
from salescast.store import Database
from tests.conftest import ADMIN_TOKEN, STORE_ITEM_CSV, require_shared_data, sqlite_url
from tests.reliability.figures import CRASH_LINES
from tests.reliability.servers import server_env
from tests.support.uvicorn_server import UvicornServer

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
STORE_ITEM_ROWS = 913_000
STORE_ITEM_COLUMNS = {"date_col": "date", "product_cols": "store,item", "quantity_col": "sales"}


@pytest.fixture
def demo_copy(tmp_path: Path, trained_demo_db: Path) -> Path:
    """A private SQLite copy of the trained demo store, alone in its directory (WAL beside it)."""
    path = tmp_path / "store" / "salescast.db"
    path.parent.mkdir()
    shutil.copy(trained_demo_db, path)
    return path


@pytest.fixture
def start_server() -> Iterator[Callable[..., UvicornServer]]:
    """Starts servers for the test; every one is stopped in teardown, even on failure."""
    started: list[UvicornServer] = []

    def start(env: dict[str, str]) -> UvicornServer:
        server = UvicornServer(env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@dataclass
class StoreState:
    rows: int
    data_versions: dict[str, int]
    active: dict[str, int | None]
    versions: dict[str, list[int]] = field(default_factory=dict)


def read_store(database_url: str) -> StoreState:
    """Read the store directly, not through the server, and decode every stored model version."""
    db = Database(database_url, create_schema=False)
    try:
        registry = ModelRegistry(db)
        with db.session() as session:
            rows = session.execute(text("SELECT count(*) FROM sales")).scalar_one()
            products = session.execute(
                text("SELECT id, data_version, active_version FROM products ORDER BY id")
            ).all()
        state = StoreState(
            rows=rows,
            data_versions={p.id: p.data_version for p in products},
            active={p.id: p.active_version for p in products},
        )
        for product in state.active:
            numbers = [info.version for info in registry.list_versions(product)]
            for number in numbers:
                decode_model(registry.get_model_blob(product, number))  # raises when partial
            state.versions[product] = numbers
        return state
    finally:
        db.dispose()


def assert_registry_is_whole(state: StoreState, client: httpx2.Client) -> None:
    for product, active in state.active.items():
        numbers = state.versions[product]
        assert numbers == list(range(1, len(numbers) + 1)), (product, numbers)
        assert active is None or active in numbers, (product, active, numbers)
        if active is not None:
            forecast = client.get(f"/products/{product}/forecast", params={"horizon": 7})
            assert forecast.status_code == 200, (product, forecast.text)
            assert forecast.json()["model_version"] == active


def products(client: httpx2.Client) -> dict[str, dict[str, object]]:
    return {p["product_id"]: p for p in client.get("/products").json()}


@pytest.mark.parametrize("moment", ["after-the-first-new-version", "during-the-first-fit"])
def test_a_server_killed_during_a_training_job_restarts_with_whole_versions(
    demo_database_url: str,
    store_kind: str,
    start_server: Callable[..., UvicornServer],
    moment: str,
) -> None:
    # Short job heartbeats, so the killed job is seen as dead within seconds.
    beats = {"SALESCAST_JOB_HEARTBEAT_SECONDS": "0.2", "SALESCAST_JOB_STALE_AFTER_SECONDS": "2"}
    server = start_server(server_env(demo_database_url, **beats))
    before = read_store(demo_database_url)
    assert set(before.active.values()) == {1}
    with httpx2.Client(base_url=server.url, headers=ADMIN, timeout=30) as client:
        job = client.post("/train", params={"force": "true"})  # the demo data is unchanged
        assert job.status_code == 202
        job_url = f"/jobs/{job.json()['id']}"
        if moment == "after-the-first-new-version":
            wait_for(
                lambda: any(p["active_version"] == 2 for p in products(client).values()),
                timeout=120,
                what="a first new version lands",
            )
        else:
            wait_for(
                lambda: client.get(job_url).json()["status"] == "running",
                timeout=30,
                what="the job starts",
            )
        at_kill = client.get(job_url).json()
        assert at_kill["status"] == "running"  # killed with work left
    server.kill()

    after = read_store(demo_database_url)
    server.restart()
    with httpx2.Client(base_url=server.url, headers=ADMIN, timeout=30) as client:
        assert_registry_is_whole(after, client)
        # The job is a row in the store: the restarted server marks it failed.
        wait_for(
            lambda: client.get(job_url).json()["status"] == "failed",
            timeout=30,
            what="the killed job is marked failed",
        )
        assert client.get(job_url).json()["error"].startswith("the worker running this job stopped")
        # Each product got its new version and activation together, or neither.
        for product, active in after.active.items():
            assert after.versions[product] == list(range(1, (active or 0) + 1))
        retrained = client.post("/products/CA_1-FOODS_3/train")
        assert retrained.status_code == 201, retrained.text
    assert after.rows == before.rows
    assert after.data_versions == before.data_versions
    moved = sum(active == 2 for active in after.active.values())
    # What the job had reported, plus at most the version it was writing at the kill.
    assert at_kill["done"] <= moved <= at_kill["done"] + 1
    if moment == "after-the-first-new-version":
        assert moved >= 1
    stored = sum(len(numbers) for numbers in after.versions.values())
    CRASH_LINES.append(
        f"training job killed {moment} on {store_kind} "
        f"(job done {at_kill['done']} of {at_kill['total']}): "
        f"{moved} of {len(after.active)} products on version 2, "
        f"{stored} stored versions all decode, {len(after.active)} forecasts answered 200"
    )


class UploadInFlight:
    """POSTs a body from a thread; says when the body is sent and whether a response came."""

    def __init__(self, server: UvicornServer, body: bytes) -> None:
        self.sent = threading.Event()
        self.status: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._send, args=(server, body), daemon=True)

    def start(self) -> UploadInFlight:
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()

    def _send(self, server: UvicornServer, body: bytes) -> None:
        # http.client, not httpx: `request` returns once the body is sent, before the answer.
        connection = http.client.HTTPConnection(server.host, server.port, timeout=300)
        try:
            url = "/sales?" + urllib.parse.urlencode(STORE_ITEM_COLUMNS)
            connection.request("POST", url, body, headers={**ADMIN, "Content-Type": "text/csv"})
            self.sent.set()
            self.status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as exc:  # the kill cuts the connection
            self.error = exc
        finally:
            self.sent.set()
            connection.close()


def wal_bytes(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


MB = 1024 * 1024
INGEST_MOMENTS = [
    pytest.param("while-parsing", marks=pytest.mark.chaos),
    pytest.param("early-in-the-insert", marks=pytest.mark.slow),
    pytest.param("late-in-the-insert", marks=pytest.mark.chaos),
    pytest.param("right-after-the-answer", marks=pytest.mark.chaos),
]
# The insert spills rows into the WAL before its commit (about 45 MB for this file).
WAL_GROWTH_BYTES = {"early-in-the-insert": 8 * MB, "late-in-the-insert": 32 * MB}


@pytest.mark.parametrize("moment", INGEST_MOMENTS)
def test_a_server_killed_during_a_large_ingest_keeps_all_or_none_of_it(
    demo_copy: Path, start_server: Callable[..., UvicornServer], moment: str
) -> None:
    body = require_shared_data(STORE_ITEM_CSV).read_bytes()
    database_url = sqlite_url(demo_copy)
    server = start_server(server_env(database_url, SALESCAST_MAX_UPLOAD_BYTES=str(32 * MB)))
    before = read_store(database_url)
    wal_at_start = wal_bytes(demo_copy)
    upload = UploadInFlight(server, body).start()
    if moment == "while-parsing":
        # Sent means the server holds (nearly) all of it and parses: no transaction yet.
        wait_for(upload.sent.is_set, timeout=60, what="the body is sent")
    elif moment == "right-after-the-answer":
        wait_for(lambda: upload.status is not None, timeout=120, what="the ingest answers")
    else:
        growth = WAL_GROWTH_BYTES[moment]
        wait_for(
            lambda: wal_bytes(demo_copy) > wal_at_start + growth,
            timeout=120,
            what=f"the insert spills {growth} bytes into the WAL",
        )
    wal_at_kill = wal_bytes(demo_copy)
    server.kill()
    upload.join()

    after = read_store(database_url)
    server.restart()
    if moment == "right-after-the-answer":
        assert upload.status == 201
        assert after.rows == before.rows + STORE_ITEM_ROWS  # a 201 is durable
    else:
        assert upload.status is None, "the ingest finished before the kill; nothing was tested"
        assert after.rows == before.rows
    if after.rows == before.rows:
        assert after.data_versions == before.data_versions
    else:
        new = {p: v for p, v in after.data_versions.items() if p not in before.data_versions}
        assert (len(new), set(new.values())) == (500, {1})
    with httpx2.Client(base_url=server.url, headers=ADMIN, timeout=30) as client:
        assert_registry_is_whole(after, client)
    assert {p: after.active[p] for p in before.active} == before.active
    kept = "all" if after.rows > before.rows else "none"
    CRASH_LINES.append(
        f"ingest of {STORE_ITEM_ROWS} rows killed {moment} (WAL {wal_at_kill / MB:.0f} MB): "
        f"sales rows {before.rows} -> {after.rows}, {kept} of it kept, "
        f"{len(after.data_versions)} products"
    )
