"""JobStore on SQLite and PostgreSQL: job rows, progress, retention, heartbeats, lost jobs."""

from __future__ import annotations

import datetime as dt

import pytest

from salescast.service import SalescastService
from salescast.store import Database, JobOwner, JobResult, JobStore

T0 = dt.datetime(2024, 6, 3, 9, 0, tzinfo=dt.UTC)
OTHER = JobOwner("other-host", 4242, "b00t")
MINUTE = dt.timedelta(minutes=1)


class Clock:
    """A settable UTC clock for the store."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(service: SalescastService, clock: Clock) -> JobStore:
    return JobStore(service.database, clock=clock)


def test_a_new_job_is_stored_queued_with_its_owner_and_utc_times(jobs: JobStore) -> None:
    created = jobs.create_job(kind="train", total=3, owner=OTHER)
    stored = jobs.get_job(created.id)
    assert stored == created
    assert (stored.status, stored.total, stored.done, stored.failed) == ("queued", 3, 0, 0)
    assert stored.owner == OTHER
    assert stored.created_at == stored.heartbeat_at == T0
    assert stored.created_at.tzinfo is not None
    assert (stored.started_at, stored.finished_at, stored.error, stored.results) == (
        None,
        None,
        None,
        (),
    )
    assert jobs.get_job("no-such-job") is None


def test_progress_and_the_end_are_stored_and_a_finished_job_never_changes(
    jobs: JobStore, clock: Clock
) -> None:
    job = jobs.create_job(kind="train", total=2, owner=OTHER)
    clock.advance(MINUTE)
    assert jobs.start_job(job.id)
    assert not jobs.start_job(job.id)  # only a queued job starts
    first = JobResult("a", 4, None, {"mae": 1.5, "mase": None})
    second = JobResult("b", None, "product 'b' has 3 day(s) of sales", None)
    assert jobs.update_progress(job.id, done=1, failed=0, results=[first])
    running = jobs.get_job(job.id)
    assert (running.status, running.done, running.results) == ("running", 1, (first,))
    assert running.started_at == T0 + MINUTE
    clock.advance(MINUTE)
    assert jobs.finish_job(job.id, status="succeeded", done=2, failed=1, results=[first, second])
    finished = jobs.get_job(job.id)
    assert (finished.status, finished.done, finished.failed) == ("succeeded", 2, 1)
    assert finished.results == (first, second)
    assert finished.finished_at == T0 + 2 * MINUTE

    assert not jobs.update_progress(job.id, done=0, failed=0, results=[])
    assert not jobs.finish_job(job.id, status="failed", error="late")
    assert jobs.heartbeat([job.id]) == 0
    assert jobs.get_job(job.id) == finished


def test_jobs_are_listed_newest_first_up_to_the_limit(jobs: JobStore, clock: Clock) -> None:
    ids = []
    for _ in range(4):
        clock.advance(MINUTE)
        ids.append(jobs.create_job(kind="train", total=1, owner=OTHER).id)
    assert [job.id for job in jobs.list_jobs(limit=3)] == ids[::-1][:3]
    assert [job.id for job in jobs.list_jobs(limit=10)] == ids[::-1]


def test_only_the_newest_finished_jobs_are_kept_and_unfinished_ones_never_pruned(
    service: SalescastService, clock: Clock
) -> None:
    jobs = JobStore(service.database, keep_finished=2, clock=clock)
    unfinished = jobs.create_job(kind="train", total=1, owner=OTHER).id
    finished = []
    for _ in range(4):
        clock.advance(MINUTE)
        job = jobs.create_job(kind="train", total=1, owner=OTHER)
        jobs.finish_job(job.id, status="succeeded")
        finished.append(job.id)
    clock.advance(MINUTE)
    newest = jobs.create_job(kind="train", total=1, owner=OTHER).id
    assert [job.id for job in jobs.list_jobs(limit=10)] == [
        newest,
        finished[3],
        finished[2],
        unfinished,
    ]


def test_a_job_without_a_heartbeat_for_the_timeout_is_marked_failed_with_the_reason(
    jobs: JobStore, clock: Clock
) -> None:
    running = jobs.create_job(kind="train", total=2, owner=OTHER)
    jobs.start_job(running.id)
    queued = jobs.create_job(kind="train", total=1, owner=OTHER)
    clock.advance(MINUTE)
    assert jobs.mark_stale_lost(stale_after=MINUTE) == []  # not older than the timeout yet
    clock.advance(dt.timedelta(seconds=1))
    assert sorted(jobs.mark_stale_lost(stale_after=MINUTE)) == sorted([running.id, queued.id])
    lost = jobs.get_job(running.id)
    assert lost.status == "failed"
    assert lost.error == (
        "the worker running this job stopped (no heartbeat since 2024-06-03T09:00:00+00:00)"
    )
    assert lost.finished_at == T0 + MINUTE + dt.timedelta(seconds=1)
    assert jobs.get_job(queued.id).status == "failed"
    assert jobs.mark_stale_lost(stale_after=MINUTE) == []  # marked once


def test_a_heartbeat_keeps_an_unfinished_job_from_being_marked_lost(
    jobs: JobStore, clock: Clock
) -> None:
    alive = jobs.create_job(kind="train", total=1, owner=OTHER)
    jobs.start_job(alive.id)
    silent = jobs.create_job(kind="train", total=1, owner=OTHER)
    clock.advance(2 * MINUTE)
    assert jobs.heartbeat([alive.id]) == 1
    assert jobs.mark_stale_lost(stale_after=MINUTE) == [silent.id]
    job = jobs.get_job(alive.id)
    assert (job.status, job.heartbeat_at) == ("running", T0 + 2 * MINUTE)


def test_unfinished_jobs_of_an_earlier_run_of_this_host_and_pid_are_marked_failed(
    jobs: JobStore,
) -> None:
    me = JobOwner("api-1", 100, "now")
    earlier = jobs.create_job(kind="train", total=1, owner=JobOwner("api-1", 100, "before"))
    jobs.start_job(earlier.id)
    mine = jobs.create_job(kind="train", total=1, owner=me)
    other_pid = jobs.create_job(kind="train", total=1, owner=JobOwner("api-1", 101, "before"))
    other_host = jobs.create_job(kind="train", total=1, owner=JobOwner("api-2", 100, "before"))
    assert jobs.mark_previous_boot_lost(me) == [earlier.id]  # heartbeats are all fresh
    error = jobs.get_job(earlier.id).error or ""
    assert error.startswith("the worker running this job stopped (its process restarted")
    assert [jobs.get_job(j.id).status for j in (mine, other_pid, other_host)] == ["queued"] * 3


def test_another_connection_to_the_same_store_sees_every_write(
    service: SalescastService, jobs: JobStore
) -> None:
    other = Database(service.database.url)
    try:
        reader = JobStore(other)
        job = jobs.create_job(kind="train", total=1, owner=OTHER)
        jobs.start_job(job.id)
        jobs.update_progress(job.id, done=1, failed=0, results=[JobResult("a", 1, None, {})])
        assert reader.get_job(job.id) == jobs.get_job(job.id)
        assert [j.id for j in reader.list_jobs()] == [job.id]
    finally:
        other.dispose()


def test_this_process_has_one_owner_identity() -> None:
    owner = JobOwner.of_this_process()
    assert owner is JobOwner.of_this_process()
    assert owner.pid > 0
    assert owner.host
    assert len(owner.boot_id) == 32
