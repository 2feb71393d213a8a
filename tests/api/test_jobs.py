"""Training jobs live in the store: any app answers for them, dead workers' jobs end failed.

Every test runs on SQLite and PostgreSQL (the shared store fixtures). Time is a
settable clock given to the JobStore; the heartbeat thread's interval is long
enough not to tick during a test unless a test is about the thread itself.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.api.jobs import JobManager
from salescast.service import SalescastService, TrainingSummary
from salescast.store import JobOwner, JobStore, StoreUnavailableError
from tests.cache.polling import eventually
from tests.conftest import make_settings

PRODUCTS = ["CA_1-HOBBIES_1", "CA_3-FOODS_3"]
DEAD = JobOwner("gone-host", 31337, "0ld")
LOST = "the worker running this job stopped (no heartbeat since "
MINUTE = dt.timedelta(minutes=1)


class Clock:
    """A settable UTC clock for the job store."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


class SlowTrainer:
    """Stands in for the service: 'trains' one product per release of the gate."""

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.first_done = threading.Event()
        self.trained: list[str] = []
        self.returned = threading.Event()

    def train_products(
        self,
        product_ids: Sequence[str],
        *,
        force: bool,
        jobs: int,
        on_progress: Any,
        **_: Any,  # scheduler, batch_id
    ) -> list[TrainingSummary]:
        try:
            summaries = []
            for done, product_id in enumerate(product_ids, start=1):
                self.gate.acquire(timeout=10)
                self.trained.append(product_id)
                summary = TrainingSummary(product_id, 1, None, {"mae": 1.0})
                summaries.append(summary)
                self.first_done.set()
                on_progress(done, len(product_ids), summary)
            return summaries
        finally:
            self.returned.set()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def trainer() -> SlowTrainer:
    return SlowTrainer()


def manager_of(
    service: SalescastService,
    trainer: SlowTrainer,
    clock: Clock,
    *,
    owner: JobOwner | None = None,
    heartbeat_interval_seconds: float = 30,
) -> JobManager:
    return JobManager(
        trainer,  # type: ignore[arg-type]  # duck-typed service
        store=JobStore(service.database, clock=clock),
        heartbeat_interval_seconds=heartbeat_interval_seconds,
        stale_after_seconds=60,
        owner=owner,
    )


@pytest.fixture
def manager(service: SalescastService, trainer: SlowTrainer, clock: Clock) -> Iterator[JobManager]:
    manager = manager_of(service, trainer, clock)
    yield manager
    for _ in range(10):
        trainer.gate.release()
    manager.shutdown()


def status_of(manager: JobManager, job_id: str) -> str:
    job = manager.get(job_id)
    assert job is not None
    return job.status


def test_shutdown_cancels_the_running_job_after_its_current_product_and_the_queued_ones(
    manager: JobManager, trainer: SlowTrainer
) -> None:
    job = manager.submit_training(["a", "b", "c", "d"])
    queued = manager.submit_training(["e"])
    trainer.gate.release()
    trainer.first_done.wait(10)
    stopper = threading.Thread(target=manager.shutdown)
    stopper.start()
    trainer.gate.release()  # let the product in progress finish
    stopper.join(10)
    assert not stopper.is_alive()
    assert trainer.trained in (["a"], ["a", "b"])
    stored = manager.get(job.id)
    assert stored is not None
    assert stored.status == "cancelled"
    assert stored.done == len(trainer.trained)
    assert [r.product_id for r in stored.results] == trainer.trained
    assert stored.error == f"the server shut down after {stored.done} of 4 products"
    never_ran = manager.get(queued.id)
    assert never_ran is not None
    assert (never_ran.status, never_ran.started_at) == ("cancelled", None)
    assert never_ran.error == "the server shut down before the job started"
    assert "e" not in trainer.trained


def test_a_job_runs_to_success_with_its_progress_stored_after_each_product(
    manager: JobManager, trainer: SlowTrainer
) -> None:
    job = manager.submit_training(["a", "b", "c"])
    assert status_of(manager, job.id) in ("queued", "running")
    trainer.gate.release()
    assert eventually(lambda: (manager.get(job.id) or job).done == 1)
    running = manager.get(job.id)
    assert running is not None
    assert running.status == "running"
    assert [r.product_id for r in running.results] == ["a"]
    trainer.gate.release()
    trainer.gate.release()
    assert eventually(lambda: status_of(manager, job.id) == "succeeded")
    done = manager.get(job.id)
    assert done is not None
    assert (done.done, done.failed, done.error) == (3, 0, None)
    assert [r.product_id for r in done.results] == ["a", "b", "c"]
    assert done.finished_at is not None
    assert done.started_at is not None
    assert done.created_at <= done.started_at <= done.finished_at


def test_a_job_submitted_on_one_app_is_answered_by_a_second_app_over_the_same_store(
    client: TestClient, admin: dict[str, str], demo_database_url: str
) -> None:
    body = {"product_ids": PRODUCTS, "force": True}  # the demo store's data is unchanged
    started = client.post("/train", json=body, headers=admin)
    assert started.status_code == 202
    job_id = started.json()["id"]
    # A second app with its own service, as another worker or instance would be.
    other_app = create_app(make_settings(demo_database_url))
    with TestClient(other_app) as other:
        first_seen = other.get(f"/jobs/{job_id}")
        assert first_seen.status_code == 200
        assert first_seen.json()["total"] == 2

        def finished() -> bool:
            return other.get(f"/jobs/{job_id}").json()["status"] not in ("queued", "running")

        assert eventually(finished, timeout=240)
        there = other.get(f"/jobs/{job_id}").json()
        listed = other.get("/jobs").json()
    here = client.get(f"/jobs/{job_id}").json()
    assert there == here
    assert there["status"] == "succeeded"
    assert (there["total"], there["done"], there["failed"]) == (2, 2, 0)
    assert sorted(r["product_id"] for r in there["results"]) == PRODUCTS
    assert {r["version"] for r in there["results"]} == {2}
    assert all(r["metrics"]["mae"] >= 0 for r in there["results"])
    assert listed[0] == there


def test_progress_of_a_running_job_is_visible_to_another_app_while_it_runs(
    service: SalescastService, trainer: SlowTrainer, clock: Clock, manager: JobManager
) -> None:
    job = manager.submit_training(["a", "b"])
    trainer.gate.release()
    with TestClient(create_app(service.settings)) as other:
        assert eventually(lambda: other.get(f"/jobs/{job.id}").json()["done"] == 1)
        seen = other.get(f"/jobs/{job.id}").json()
        assert seen["status"] == "running"
        assert seen["results"] == [
            {
                "product_id": "a",
                "version": 1,
                "error": None,
                "metrics": {"mae": 1.0},
                "outcome": "activated",
                "reason": None,
                "note": None,
            }
        ]
        owner = JobOwner.of_this_process()
        assert seen["owner"] == {"host": owner.host, "pid": owner.pid}
        trainer.gate.release()
        assert eventually(lambda: other.get(f"/jobs/{job.id}").json()["status"] == "succeeded")


def test_get_jobs_lists_recent_jobs_newest_first_with_a_bounded_limit(
    service: SalescastService, clock: Clock
) -> None:
    store = JobStore(service.database, clock=clock)
    ids = []
    for _ in range(3):
        clock.advance(MINUTE)
        ids.append(store.create_job(kind="train", total=1, owner=JobOwner.of_this_process()).id)
    with TestClient(create_app(service.settings, service=service)) as client:
        assert [job["id"] for job in client.get("/jobs").json()] == ids[::-1]
        assert [job["id"] for job in client.get("/jobs?limit=2").json()] == ids[:0:-1]
        assert client.get("/jobs?limit=0").status_code == 422
        assert client.get("/jobs?limit=101").status_code == 422
        assert client.get("/jobs/unknown").status_code == 404


def test_a_job_left_running_by_a_dead_worker_is_failed_when_an_app_starts(
    service: SalescastService, clock: Clock
) -> None:
    store = JobStore(service.database, clock=clock)
    clock.advance(-10 * MINUTE)  # its last heartbeat, ten minutes ago
    dead = store.create_job(kind="train", total=5, owner=DEAD)
    store.start_job(dead.id)
    clock.advance(10 * MINUTE)
    alive = store.create_job(kind="train", total=5, owner=JobOwner("busy-host", 7, "b"))
    store.start_job(alive.id)
    with TestClient(create_app(service.settings, service=service)) as client:
        job = client.get(f"/jobs/{dead.id}").json()
        assert job["status"] == "failed"
        assert job["error"].startswith(LOST)
        assert job["finished_at"] is not None
        assert client.get(f"/jobs/{alive.id}").json()["status"] == "running"


def test_a_new_manager_fails_dead_jobs_at_start_and_its_heartbeat_sweep_fails_later_ones(
    service: SalescastService, trainer: SlowTrainer, clock: Clock
) -> None:
    store = JobStore(service.database, clock=clock)
    earlier = store.create_job(kind="train", total=1, owner=DEAD)
    store.start_job(earlier.id)
    clock.advance(2 * MINUTE)
    later = store.create_job(kind="train", total=1, owner=DEAD)
    store.start_job(later.id)
    manager = manager_of(service, trainer, clock)
    try:
        manager.start()
        assert status_of(manager, earlier.id) == "failed"
        assert status_of(manager, later.id) == "running"  # its heartbeat is fresh
        clock.advance(MINUTE - dt.timedelta(seconds=1))
        assert manager.heartbeat() == []
        clock.advance(dt.timedelta(seconds=2))
        assert manager.heartbeat() == [later.id]
        job = manager.get(later.id)
        assert job is not None
        assert job.status == "failed"
        heartbeat = (clock.now - MINUTE - dt.timedelta(seconds=1)).isoformat(timespec="seconds")
        assert job.error == f"{LOST}{heartbeat})"
    finally:
        manager.shutdown()


def test_jobs_of_an_earlier_run_of_this_process_are_failed_when_its_manager_starts(
    service: SalescastService, trainer: SlowTrainer, clock: Clock
) -> None:
    me = JobOwner.of_this_process()
    store = JobStore(service.database, clock=clock)
    earlier = store.create_job(kind="train", total=1, owner=JobOwner(me.host, me.pid, "earlier"))
    store.start_job(earlier.id)
    manager = manager_of(service, trainer, clock)
    try:
        manager.start()
        job = manager.get(earlier.id)
        assert job is not None
        assert job.status == "failed"
        assert (job.error or "").startswith("the worker running this job stopped (its process")
    finally:
        manager.shutdown()


def test_a_live_jobs_heartbeat_keeps_it_from_being_swept_by_any_worker(
    service: SalescastService, trainer: SlowTrainer, clock: Clock, manager: JobManager
) -> None:
    job = manager.submit_training(["a", "b"])
    other = manager_of(service, SlowTrainer(), clock, owner=JobOwner("api-2", 2, "x"))
    try:
        other.start()
        for _ in range(5):  # five timeouts pass, each with a heartbeat of the owner
            clock.advance(MINUTE + dt.timedelta(seconds=1))
            assert manager.heartbeat() == []
            assert other.heartbeat() == []
        assert status_of(manager, job.id) == "running"  # the trainer holds it at its gate
    finally:
        other.shutdown()


def test_a_job_marked_lost_while_it_runs_stops_and_stays_failed(
    service: SalescastService, trainer: SlowTrainer, clock: Clock, manager: JobManager
) -> None:
    job = manager.submit_training(["a", "b", "c"])
    trainer.gate.release()
    assert eventually(lambda: (manager.get(job.id) or job).done == 1)
    clock.advance(2 * MINUTE)  # the owner missed its heartbeats (say, a long pause)
    sweeper = manager_of(service, SlowTrainer(), clock, owner=JobOwner("api-2", 2, "x"))
    try:
        assert sweeper.heartbeat() == [job.id]
    finally:
        sweeper.shutdown()
    trainer.gate.release()
    assert trainer.returned.wait(10)
    assert trainer.trained == ["a", "b"]  # stopped at its next product, not run to the end
    stored = manager.get(job.id)
    assert stored is not None
    assert (stored.status, stored.done) == ("failed", 1)
    assert (stored.error or "").startswith(LOST)


def test_the_heartbeat_thread_refreshes_the_managers_unfinished_jobs(
    service: SalescastService, trainer: SlowTrainer
) -> None:
    manager = JobManager(
        trainer,  # type: ignore[arg-type]  # duck-typed service
        store=JobStore(service.database),  # real time: only the thread moves the heartbeat
        heartbeat_interval_seconds=0.05,
        stale_after_seconds=60,
    )
    try:
        job = manager.submit_training(["a"])  # held at the trainer's gate
        assert eventually(lambda: status_of(manager, job.id) == "running")
        started = manager.get(job.id)
        assert started is not None

        def beaten() -> bool:
            stored = manager.get(job.id)
            return stored is not None and stored.heartbeat_at > started.heartbeat_at

        assert eventually(beaten, timeout=10)
        assert status_of(manager, job.id) == "running"
    finally:
        trainer.gate.release()
        manager.shutdown()


class OutageJobStore(JobStore):
    """The real store, whose heartbeat writes fail while `down` (the database out of reach)."""

    down = False

    def heartbeat(self, job_ids: Any) -> Any:
        if self.down:
            raise StoreUnavailableError("OperationalError: connection refused")
        return super().heartbeat(job_ids)


def test_after_a_store_outage_live_jobs_of_other_workers_get_time_to_beat_before_a_sweep(
    service: SalescastService, clock: Clock
) -> None:
    # Another worker's job, running; its last heartbeat is now.
    store = OutageJobStore(service.database, clock=clock)
    job = store.create_job(kind="train", total=3, owner=JobOwner("api-2", 2, "x"))
    assert store.start_job(job.id)
    sweeper = JobManager(
        SlowTrainer(),  # type: ignore[arg-type]  # duck-typed service
        store=store,
        heartbeat_interval_seconds=30,
        stale_after_seconds=60,
    )
    store.down = True
    clock.advance(2 * MINUTE)  # an outage: nobody's heartbeat reaches the store
    assert sweeper.heartbeat() == []
    store.down = False

    # Back: the other worker's heartbeat is two minutes old only because of the
    # outage. No sweep until every worker has had a timeout's length to beat.
    assert sweeper.heartbeat() == []
    clock.advance(dt.timedelta(seconds=5))
    store.heartbeat([job.id])  # the other worker beats again
    clock.advance(dt.timedelta(seconds=56))
    assert sweeper.heartbeat() == []
    assert status_of(sweeper, job.id) == "running"

    # A worker that never comes back is still found, a timeout later.
    clock.advance(2 * MINUTE)
    assert sweeper.heartbeat() == [job.id]
    assert status_of(sweeper, job.id) == "failed"
