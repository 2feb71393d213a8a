"""Training and model series for `/metrics`, read from the store.

Everything here is counted by the store, not by the process that happens to
answer a scrape: trainings run in API workers (jobs) and in `salescast train`
(the CLI, which serves no `/metrics`), and several workers share one store.

- Gauges of what the store holds now, set at each sync by whichever worker
  syncs (they all read the same rows): jobs by state, active models, active
  models whose backtest is worse than seasonal-naive's, versions ever trained
  (numbers are never given twice, so this only grows: `rate()` of it is the
  training rate, CLI trainings included).
- Counters and a histogram of the jobs this process ran, counted once each,
  by this process, when it sees them finished: their duration, their
  products by outcome, and product failures.

Labels are bounded: job states and product outcomes are fixed sets.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from salescast.forecasting.registry import ModelCounts
from salescast.store.jobs import JobOwner, JobStatus, JobStore, utc_now

logger = logging.getLogger("salescast.metrics")

JOB_STATES: tuple[str, ...] = typing.get_args(JobStatus)
OUTCOMES = ("activated", "not_activated", "skipped", "failed")
_JOB_SECONDS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)


class TrainingMetrics:
    """The training and model series of one app, and how they are brought up to date."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        model_counts: Callable[[], ModelCounts],
        jobs: JobStore,
        owner: JobOwner | None = None,
    ) -> None:
        self._model_counts = model_counts
        self._jobs = jobs
        self._owner = owner or JobOwner.of_this_process()
        self._since = utc_now()  # jobs that finished before this process started are not ours
        self.job_duration = Histogram(
            "salescast_training_job_duration_seconds",
            "Wall time of the training jobs this server ran, by final state.",
            ["state"],
            buckets=_JOB_SECONDS,
            registry=registry,
        )
        self.products = Counter(
            "salescast_training_products",
            "Products handled by this server's training jobs, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.product_failures = Counter(
            "salescast_training_product_failures",
            "Products whose training failed in this server's jobs.",
            registry=registry,
        )
        self.jobs_by_state = Gauge(
            "salescast_training_jobs",
            "Training jobs the store holds, by state.",
            ["state"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.models_active = Gauge(
            "salescast_models_active",
            "Products with an active model version.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.models_worse = Gauge(
            "salescast_models_active_worse_than_naive",
            "Active model versions whose backtest MASE is above seasonal-naive's.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.versions_trained = Gauge(
            "salescast_model_versions_trained",
            "Model versions ever trained (never decreases; rate() is the training rate).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        for outcome in OUTCOMES:
            self.products.labels(outcome)  # every series present from the start

    def sync(self) -> None:
        """Read the store; a store that does not answer leaves the last values (logged)."""
        try:
            self._sync_store_gauges()
            self._count_finished_jobs()
        except Exception:
            logger.warning("training metrics: the store did not answer", exc_info=True)

    def _sync_store_gauges(self) -> None:
        counts = self._jobs.count_by_status()
        for state in JOB_STATES:
            self.jobs_by_state.labels(state).set(counts.get(state, 0))
        models = self._model_counts()
        self.models_active.set(models.active)
        self.models_worse.set(models.worse_than_naive)
        self.versions_trained.set(models.trained)

    def _count_finished_jobs(self) -> None:
        for job in self._jobs.finished_since(self._owner, self._since):
            assert job.finished_at is not None
            self._since = max(self._since, job.finished_at)
            began = job.started_at or job.created_at
            self.job_duration.labels(job.status).observe(
                max(0.0, (job.finished_at - began).total_seconds())
            )
            for result in job.results:
                outcome = result.outcome if result.outcome in OUTCOMES else "failed"
                self.products.labels(outcome).inc()
            if job.failed:
                self.product_failures.inc(job.failed)
