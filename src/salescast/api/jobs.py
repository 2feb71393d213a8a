"""Background training jobs with progress, run one at a time on a worker thread."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from salescast.service import SalescastService, TrainingSummary

logger = logging.getLogger("salescast.jobs")

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobCancelledError(Exception):
    """The server is shutting down; the job stops between two products."""


@dataclass
class Job:
    id: str
    kind: str
    total: int
    status: JobStatus = "queued"
    done: int = 0
    failed: int = 0
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    finished_at: dt.datetime | None = None
    error: str | None = None
    results: list[TrainingSummary] = field(default_factory=list)


class JobManager:
    """Runs training jobs in the background of one server process.

    Jobs queue behind each other on one thread (each may fan out to `jobs`
    processes), since two batches training at once would only compete for the
    same cores. Job records live in this process's memory: they are lost on
    restart, and with several workers `GET /jobs/{id}` must reach the worker
    that accepted the job (the response says which job ids it knows).
    """

    def __init__(self, service: SalescastService, *, jobs: int = 1, keep: int = 100) -> None:
        self._service = service
        self._jobs_per_batch = jobs
        self._keep = keep
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="salescast-train")
        self._stopping = threading.Event()

    def submit_training(self, product_ids: Sequence[str]) -> Job:
        job = Job(id=uuid.uuid4().hex, kind="train", total=len(product_ids))
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        self._executor.submit(self._run_training, job, list(product_ids))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def shutdown(self) -> None:
        """Stop after the product being trained now: queued jobs are dropped, the
        running one ends as "cancelled" with what it finished, so the service
        can close its store without pulling it from under a training."""
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run_training(self, job: Job, product_ids: list[str]) -> None:
        job.status = "running"

        def progress(done: int, _total: int, summary: TrainingSummary) -> None:
            job.done = done
            job.failed += summary.error is not None
            job.results.append(summary)
            if self._stopping.is_set():
                raise JobCancelledError(job.id)

        try:
            self._service.train_products(
                product_ids, jobs=self._jobs_per_batch, on_progress=progress
            )
            job.status = "succeeded"
        except JobCancelledError:
            logger.warning(
                "training job %s cancelled at shutdown after %d products", job.id, job.done
            )
            job.status = "cancelled"
        except Exception as exc:  # the job reports it; the server goes on
            logger.exception("training job %s failed", job.id)
            job.status = "failed"
            job.error = str(exc)
        finally:
            job.finished_at = dt.datetime.now(dt.UTC)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished_at is not None]
        for job in finished[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[job.id]
