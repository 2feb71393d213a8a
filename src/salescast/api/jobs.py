"""Background training jobs, stored as rows and run one at a time on a worker thread."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from salescast.forecasting.dask_batch import DaskScheduler
from salescast.service import SalescastService, TrainingSummary
from salescast.store.jobs import JobOwner, JobRecord, JobResult, JobStatus, JobStore

logger = logging.getLogger("salescast.jobs")

__all__ = ["JobCancelledError", "JobManager", "JobRecord", "JobStatus"]

HEARTBEAT_INTERVAL_SECONDS = 5.0
STALE_AFTER_SECONDS = 60.0


class JobCancelledError(Exception):
    """The server is shutting down; the job stops between two products."""


class JobLostError(Exception):
    """The job's row is no longer running (another worker marked it failed); stop working on it."""


class JobManager:
    """Runs training jobs in the background of one server process; the store holds their state.

    Jobs queue behind each other on one thread of the process that accepted
    them (each may fan out to `jobs` processes), since two batches training at
    once would only compete for the same cores. Every job is a row of the
    store's `jobs` table (`JobStore`), written when it is queued, starts,
    finishes each product (one single-row UPDATE, no transaction held across
    training) and ends, so any worker or API instance answers `GET /jobs/{id}`
    and `GET /jobs`, and jobs outlive a restart. The store keeps the newest 100
    finished jobs (`JobStore(keep_finished=...)`).

    Liveness: `start()` (the app's start-up) marks failed the unfinished jobs
    of an earlier process with this host and pid, and any unfinished job whose
    heartbeat is older than `stale_after_seconds`; then a daemon thread calls
    `heartbeat()` every `heartbeat_interval_seconds`, which refreshes the
    heartbeat of this manager's queued and running jobs and sweeps stale ones
    again. So a job whose process died ends as failed ("the worker running this
    job stopped (no heartbeat since ...)") within about `stale_after_seconds`
    plus one interval, found by whichever worker ticks first. The defaults (5 s,
    60 s) keep the idle cost at one small indexed SELECT per worker every 5 s,
    and the timeout longer than SQLite's 30 s busy timeout, so a heartbeat held
    up behind a long ingest's write lock is not taken for a dead process (and
    instances' clocks only need to agree to within tens of seconds). A job
    found marked failed while it still runs here stops at its next product:
    a finished job never changes status again.

    `shutdown()` stops after the product being trained now: the running job
    ends as "cancelled" with what it finished, queued ones as "cancelled"
    without starting.

    With `scheduler`, each job trains on that Dask cluster (the job's id is
    its batch id: one version per product per job, however Dask retries). A
    scheduler that cannot be reached fails the job with the reason, naming
    SALESCAST_DASK_SCHEDULER and the address, before any product is trained;
    `POST /train` still answers 202 (the cluster may come and go between the
    request and the job's start, so only the job can tell). A job ends
    "succeeded" when no product failed, "partial" when some did, "failed"
    when all did.
    """

    def __init__(
        self,
        service: SalescastService,
        *,
        store: JobStore | None = None,
        jobs: int = 1,
        scheduler: DaskScheduler | None = None,
        heartbeat_interval_seconds: float = HEARTBEAT_INTERVAL_SECONDS,
        stale_after_seconds: float = STALE_AFTER_SECONDS,
        owner: JobOwner | None = None,
    ) -> None:
        if heartbeat_interval_seconds <= 0 or stale_after_seconds <= heartbeat_interval_seconds:
            raise ValueError("need 0 < heartbeat_interval_seconds < stale_after_seconds")
        self._service = service
        self._store = store if store is not None else JobStore(service.database)
        self._jobs_per_batch = jobs
        self._scheduler = scheduler
        self._interval = heartbeat_interval_seconds
        self._stale_after = dt.timedelta(seconds=stale_after_seconds)
        self._owner = owner or JobOwner.of_this_process()
        # When this manager's own heartbeat last failed (store time), if ever.
        self._last_failed_beat: dt.datetime | None = None
        self._lock = threading.Lock()
        self._unfinished: set[str] = set()  # accepted here, not yet written as finished
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="salescast-train")
        self._stopping = threading.Event()
        self._heartbeats: threading.Thread | None = None

    @property
    def store(self) -> JobStore:
        return self._store

    def start(self) -> None:
        """Sweep jobs left by dead processes, then start the heartbeat thread; idempotent."""
        with self._lock:
            if self._heartbeats is not None or self._stopping.is_set():
                return
            self._heartbeats = threading.Thread(
                target=self._beat_until_stopped, name="salescast-job-heartbeat", daemon=True
            )
        try:
            lost = self._store.mark_previous_boot_lost(self._owner)
            if lost:
                logger.warning("marked %d jobs of this process's previous run failed", len(lost))
        except Exception:  # the store may be down at start-up; the ticks sweep later
            logger.exception("could not sweep the jobs of this process's previous run")
        self.heartbeat()
        self._heartbeats.start()

    def submit_training(self, product_ids: Sequence[str], *, force: bool = False) -> JobRecord:
        """Queue a training job of `product_ids` and return it as stored (status "queued");
        unless `force`, products unchanged since their newest version are skipped."""
        if self._stopping.is_set():
            raise RuntimeError("the job manager is shut down")
        self.start()
        job = self._store.create_job(kind="train", total=len(product_ids), owner=self._owner)
        with self._lock:
            self._unfinished.add(job.id)
        try:
            self._executor.submit(self._run_training, job.id, list(product_ids), force)
        except RuntimeError:  # shut down meanwhile
            self._finish(job.id, "cancelled", error="the server shut down before the job started")
            raise
        return job

    def get(self, job_id: str) -> JobRecord | None:
        """The job as stored, whichever process runs it; None when unknown (or pruned)."""
        return self._store.get_job(job_id)

    def list_recent(self, *, limit: int = 20) -> list[JobRecord]:
        """The `limit` newest jobs of every process, newest first."""
        return self._store.list_jobs(limit=limit)

    def heartbeat(self) -> list[str]:
        """Refresh this manager's unfinished jobs, then mark stale jobs failed; returns those ids.

        Called by the heartbeat thread; tests call it directly. Store errors
        are logged, never raised: the next tick tries again.
        """
        with self._lock:
            mine = set(self._unfinished)
        try:
            self._store.heartbeat(mine)
            if not self._may_sweep():
                return []
            lost = self._store.mark_stale_lost(stale_after=self._stale_after)
        except Exception:
            self._last_failed_beat = self._store.now()
            logger.exception("job heartbeat failed; trying again in %.0f s", self._interval)
            return []
        for job_id in lost:
            logger.warning("job %s marked failed: no heartbeat from its worker", job_id)
        return lost

    def _may_sweep(self) -> bool:
        # If this manager's own heartbeat failed lately, the store was probably
        # out of reach for every worker, and their heartbeats are stale for that
        # reason alone: sweep only once they have had `stale_after` to beat again.
        failed = self._last_failed_beat
        return failed is None or self._store.now() - failed >= self._stale_after

    def shutdown(self) -> None:
        """Stop after the product being trained now: queued jobs end "cancelled" without
        starting, the running one "cancelled" with what it finished, so the service
        can close its store without pulling it from under a training."""
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            never_started = sorted(self._unfinished)
        for job_id in never_started:
            self._finish(job_id, "cancelled", error="the server shut down before the job started")
        if self._heartbeats is not None and self._heartbeats.is_alive():
            self._heartbeats.join(timeout=30)  # at most one store write in flight

    def _beat_until_stopped(self) -> None:
        while not self._stopping.wait(self._interval):
            self.heartbeat()

    def _run_training(self, job_id: str, product_ids: list[str], force: bool) -> None:
        if self._stopping.is_set():
            return  # left to shutdown(), which marks it cancelled
        try:
            started = self._store.start_job(job_id)
        except Exception:
            logger.exception("training job %s could not start", job_id)
            self._finish(job_id, "failed", error="the store did not answer when the job started")
            return
        if not started:  # marked failed while it waited in the queue
            logger.warning("training job %s was no longer queued; not started", job_id)
            self._forget(job_id)
            return
        results: list[JobResult] = []
        failed = 0

        def progress(done: int, _total: int, summary: TrainingSummary) -> None:
            nonlocal failed
            failed += summary.error is not None
            results.append(
                JobResult(
                    summary.product_id,
                    summary.version,
                    summary.error,
                    summary.metrics,
                    summary.outcome,
                    summary.reason,
                    summary.note,
                )
            )
            self._write_progress(job_id, done, failed, results)
            if self._stopping.is_set():
                raise JobCancelledError(job_id)

        status: JobStatus = "succeeded"
        error: str | None = None
        try:
            self._service.train_products(
                product_ids,
                force=force,
                jobs=self._jobs_per_batch,
                scheduler=self._scheduler,
                batch_id=job_id,
                on_progress=progress,
            )
            status, error = final_status(len(results), failed)
        except JobLostError:
            logger.warning("training job %s stopped: it was marked failed meanwhile", job_id)
            self._forget(job_id)
            return
        except JobCancelledError:
            logger.warning(
                "training job %s cancelled at shutdown after %d products", job_id, len(results)
            )
            status = "cancelled"
            error = f"the server shut down after {len(results)} of {len(product_ids)} products"
        except Exception as exc:  # the job reports it; the server goes on
            logger.exception("training job %s failed", job_id)
            status, error = "failed", str(exc)
        self._finish(job_id, status, error=error, failed=failed, results=results)

    def _write_progress(
        self, job_id: str, done: int, failed: int, results: list[JobResult]
    ) -> None:
        try:
            running = self._store.update_progress(job_id, done=done, failed=failed, results=results)
        except Exception:  # progress is advisory; the final write carries it all
            logger.warning("could not store the progress of job %s", job_id, exc_info=True)
            return
        if not running:
            raise JobLostError(job_id)

    def _finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        failed: int | None = None,
        results: list[JobResult] | None = None,
    ) -> None:
        try:
            written = self._store.finish_job(
                job_id,
                status=status,
                error=error,
                done=None if results is None else len(results),
                failed=failed,
                results=results,
            )
            if not written:
                logger.warning("job %s had already finished; %s not stored", job_id, status)
        except Exception:  # its heartbeat stops now, so a sweep marks it failed later
            logger.exception("could not store the end (%s) of job %s", status, job_id)
        finally:
            self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._unfinished.discard(job_id)


def final_status(finished: int, failed: int) -> tuple[JobStatus, str | None]:
    """How a job that ran to its end ends: by how many of its `finished` products failed."""
    if not failed:
        return "succeeded", None
    if failed < finished:
        return "partial", f"{failed} of {finished} products failed (see results)"
    return "failed", f"every product failed ({failed}; see results)"
