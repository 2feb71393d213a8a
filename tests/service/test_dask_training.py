"""Bulk training on real Dask clusters: one version per product per batch, whatever dies.

Two kinds of cluster, both real: a `distributed.LocalCluster` with two worker
processes (one for the module), and a `dask scheduler` with two `dask worker`
processes from the command line (`tests/support/dask_cluster.py`, one per
test that needs it, since one test kills a worker). The products are short
slices of real store-item series (the last `DAYS` days of the first few
series), which keep each fit well under a second.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from salescast.api.app import create_app
from salescast.cli.main import app
from salescast.config import Settings
from salescast.forecasting.dask_batch import DaskScheduler, SchedulerUnavailableError
from salescast.service import SalescastService, TrainingSummary
from salescast.store.ingest import ColumnSpec
from tests.cache.polling import eventually
from tests.cli.test_cli import run_cli
from tests.conftest import ADMIN_TOKEN, STORE_ITEM_CSV, make_settings, require_shared_data
from tests.support.dask_cluster import DaskCommandCluster, worker_environment
from tests.support.redis_server import free_port

DAYS = 120
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
COLUMNS = ColumnSpec(date="date", product=("store", "item"), quantity="sales")


def store_item_slice(series: int, days: int = DAYS) -> bytes:
    """The last `days` days of the first `series` store-item series, as CSV (ids "1-1", ...)."""
    per_series: dict[tuple[str, str], list[dict[str, str]]] = {}
    with require_shared_data(STORE_ITEM_CSV).open(newline="") as source:
        for row in csv.DictReader(source):
            key = (row["store"], row["item"])
            if key not in per_series and len(per_series) == series:
                break
            per_series.setdefault(key, []).append(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["date", "store", "item", "sales"])
    writer.writeheader()
    for rows in per_series.values():
        writer.writerows(rows[-days:])
    return out.getvalue().encode()


def service_with(tmp_path: Path, series: int, **settings: object) -> SalescastService:
    service = SalescastService(dask_settings(tmp_path, **settings))
    service.ingest_csv(store_item_slice(series), columns=COLUMNS)
    return service


def dask_settings(tmp_path: Path, **settings: object) -> Settings:
    return make_settings(tmp_path / "store.db", uncertainty_samples=0, **settings)


def versions_by_product(service: SalescastService) -> dict[str, list[tuple[int, str | None]]]:
    return {
        product_id: [(v.version, v.batch_id) for v in service.list_models(product_id)]
        for product_id in service.list_product_ids()
    }


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[str]:
    """A LocalCluster of two single-threaded worker processes; yields its address."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        processes=True,
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        env=worker_environment(),
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture
def command_cluster() -> Iterator[DaskCommandCluster]:
    with DaskCommandCluster(workers=2) as cluster:
        yield cluster


def test_a_batch_on_a_local_cluster_stores_one_version_per_product_as_futures_complete(
    tmp_path: Path, local_cluster: str
) -> None:
    service = service_with(tmp_path, 4)
    progress: list[tuple[int, int, str]] = []
    try:
        summaries = service.train_products(
            scheduler=DaskScheduler(local_cluster),
            batch_id="batch1",
            on_progress=lambda done, total, s: progress.append((done, total, s.product_id)),
        )
        assert [(s.outcome, s.version, s.error) for s in summaries] == [("activated", 1, None)] * 4
        assert [(done, total) for done, total, _ in progress] == [(i, 4) for i in range(1, 5)]
        assert sorted(p for _, _, p in progress) == sorted(service.list_product_ids())
        assert set(map(tuple, versions_by_product(service).values())) == {((1, "batch1"),)}
        # Written here, once: the new active model is in the cache for the first forecast.
        product = summaries[0].product_id
        assert service.models.peek(product, 1) is not None
    finally:
        service.close()


def test_the_same_batch_delivered_again_adds_no_version_and_reports_each_product_once(
    tmp_path: Path, local_cluster: str
) -> None:
    service = service_with(tmp_path, 2)
    try:
        first = service.train_products(scheduler=DaskScheduler(local_cluster), batch_id="b")
        # Every product trained a second time in the same batch, as after a retry.
        again = service.train_products(
            force=True, scheduler=DaskScheduler(local_cluster), batch_id="b"
        )
        assert sorted((s.product_id, s.version) for s in again) == sorted(
            (s.product_id, s.version) for s in first
        )
        assert set(map(tuple, versions_by_product(service).values())) == {((1, "b"),)}
        later = service.train_products(force=True, scheduler=DaskScheduler(local_cluster))
        assert {s.version for s in later} == {2}
    finally:
        service.close()


def test_a_worker_killed_mid_job_has_its_products_rescheduled_and_the_job_says_so(
    tmp_path: Path, command_cluster: DaskCommandCluster
) -> None:
    settings = dask_settings(tmp_path, dask_scheduler=command_cluster.address)
    service = SalescastService(settings)
    service.ingest_csv(store_item_slice(8, days=200), columns=COLUMNS)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            job = client.post("/train", headers=AUTH).json()
            url = f"/jobs/{job['id']}"
            assert eventually(lambda: client.get(url).json()["done"] >= 1, timeout=120)
            victim = command_cluster.worker_pids[0]
            command_cluster.kill_worker(victim)
            assert eventually(lambda: client.get(url).json()["finished_at"] is not None, 180)
            done = client.get(url).json()
        assert (done["status"], done["total"], done["done"], done["failed"]) == (
            "succeeded",
            8,
            8,
            0,
        ), done
        notes = [r["note"] for r in done["results"] if r["note"] is not None]
        assert notes, done["results"]
        # Rescheduled (it ran on the killed worker), or trained again (it had
        # finished there, and its result was lost with the worker).
        said = {n.split(" died ")[0].split(": ")[0] for n in notes}
        assert said <= {"rescheduled", "trained again"}, notes
        assert len({n.split("Dask worker ")[1].split(" ")[0] for n in notes}) == 1, notes
        assert [r["version"] for r in done["results"]] == [1] * 8
        versions = versions_by_product(service)
        assert set(map(tuple, versions.values())) == {((1, job["id"]),)}, versions
        assert command_cluster.worker_count() == 1
    finally:
        service.close()


def test_train_all_with_a_scheduler_from_the_cli_trains_every_product_in_one_batch(
    tmp_path: Path, local_cluster: str
) -> None:
    service = service_with(tmp_path, 3)
    url = service.settings.database_url
    service.close()
    result = run_cli(url, "train", "--all", "--scheduler", local_cluster)
    assert result.returncode == 0, result.stderr
    assert "trained 3 of 3 products (3 activated" in result.stdout
    reopened = SalescastService(make_settings(tmp_path / "store.db"))
    try:
        batches = {v[0][1] for v in versions_by_product(reopened).values()}
        assert len(batches) == 1
        assert None not in batches
    finally:
        reopened.close()


def unreachable() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def test_an_unreachable_scheduler_on_the_cli_names_the_option_and_trains_nothing(
    tmp_path: Path,
) -> None:
    service = service_with(tmp_path, 2)
    url = service.settings.database_url
    service.close()
    address = unreachable()
    result = run_cli(
        url, "train", "--all", "--scheduler", address, SALESCAST_DASK_CONNECT_TIMEOUT_SECONDS="1"
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"salescast: cannot train on the Dask scheduler at {address}")
    assert "(set by --scheduler)" in last
    assert "nothing was trained" in last
    assert "Traceback" not in result.stderr
    # The setting is named when it is what pointed there.
    by_setting = run_cli(
        url,
        "train",
        "--all",
        SALESCAST_DASK_SCHEDULER=address,
        SALESCAST_DASK_CONNECT_TIMEOUT_SECONDS="1",
    )
    assert by_setting.returncode == 1
    assert "(set by SALESCAST_DASK_SCHEDULER)" in by_setting.stderr
    reopened = SalescastService(make_settings(tmp_path / "store.db"))
    try:
        assert all(v == [] for v in versions_by_product(reopened).values())
    finally:
        reopened.close()


def test_an_unreachable_scheduler_fails_the_job_with_the_reason_and_trains_nothing(
    tmp_path: Path,
) -> None:
    address = unreachable()
    settings = dask_settings(tmp_path, dask_scheduler=address, dask_connect_timeout_seconds=1)
    service = service_with(tmp_path, 2, dask_scheduler=address, dask_connect_timeout_seconds=1)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            accepted = client.post("/train", headers=AUTH)
            assert accepted.status_code == 202
            url = f"/jobs/{accepted.json()['id']}"
            assert eventually(lambda: client.get(url).json()["finished_at"] is not None, 30)
            job = client.get(url).json()
        assert (job["status"], job["done"], job["results"]) == ("failed", 0, [])
        assert job["error"].startswith(f"cannot train on the Dask scheduler at {address}")
        assert "SALESCAST_DASK_SCHEDULER" in job["error"]
        assert all(v == [] for v in versions_by_product(service).values())
    finally:
        service.close()


def test_the_service_raises_before_reporting_anything_when_the_scheduler_is_unreachable(
    tmp_path: Path,
) -> None:
    service = service_with(tmp_path, 2)
    seen: list[TrainingSummary] = []
    try:
        scheduler = DaskScheduler(unreachable(), connect_timeout_seconds=1)
        with pytest.raises(SchedulerUnavailableError, match="nothing was trained"):
            service.train_products(scheduler=scheduler, on_progress=lambda *a: seen.append(a[2]))
        assert seen == []
    finally:
        service.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all", "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"], "without --jobs"),
        (["--product", "1-1", "--scheduler", "tcp://127.0.0.1:1"], "goes with --all"),
        (["--all", "--scheduler", "127.0.0.1:8786"], "is not tcp://host:port"),
    ],
)
def test_scheduler_options_that_cannot_work_are_usage_errors(args: list[str], message: str) -> None:
    # In process: these are refused before any setting or store is read.
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_a_job_with_some_products_failing_ends_partial_and_all_failing_ends_failed(
    tmp_path: Path,
) -> None:
    settings = dask_settings(tmp_path)
    service = SalescastService(settings)
    rows = store_item_slice(2, days=90).decode().splitlines()
    # The second series keeps only its last 30 days: too little history to train.
    second = [r for r in rows[1:] if r.split(",")[1:3] != rows[1].split(",")[1:3]]
    first = [r for r in rows[1:] if r not in second]
    body = "\n".join([rows[0], *first, *second[-30:]]).encode()
    service.ingest_csv(body, columns=COLUMNS)
    short = second[-1].split(",")[1] + "-" + second[-1].split(",")[2]
    try:
        with TestClient(create_app(settings, service=service)) as client:
            jobs = [
                client.post("/train", headers=AUTH).json(),
                client.post("/train", headers=AUTH, json={"product_ids": [short]}).json(),
            ]
            for job in jobs:
                url = f"/jobs/{job['id']}"
                assert eventually(lambda u=url: client.get(u).json()["finished_at"], 60)
            partial, failed = (client.get(f"/jobs/{job['id']}").json() for job in jobs)
        assert (partial["status"], partial["failed"], partial["done"]) == ("partial", 1, 2)
        assert partial["error"] == "1 of 2 products failed (see results)"
        assert (failed["status"], failed["failed"]) == ("failed", 1)
        [result] = failed["results"]
        assert "training needs at least 60" in result["error"]
    finally:
        service.close()


def test_a_product_listed_twice_is_trained_and_counted_once(
    tmp_path: Path, local_cluster: str
) -> None:
    service = service_with(tmp_path, 2)
    [first, second] = service.list_product_ids()
    progress: list[tuple[int, int]] = []
    try:
        summaries = service.train_products(
            [first, second, first],
            scheduler=DaskScheduler(local_cluster),
            on_progress=lambda done, total, _: progress.append((done, total)),
        )
        assert sorted(s.product_id for s in summaries) == sorted([first, second])
        assert progress == [(1, 2), (2, 2)]
        assert [len(v) for v in versions_by_product(service).values()] == [1, 1]
    finally:
        service.close()


def test_batches_on_the_local_pool_carry_their_batch_id_too(tmp_path: Path) -> None:
    service = service_with(tmp_path, 1, dask_scheduler=None)
    try:
        [summary] = service.train_products(batch_id="local")
        assert summary.version == 1
        assert list(itertools.chain(*versions_by_product(service).values())) == [(1, "local")]
    finally:
        service.close()
