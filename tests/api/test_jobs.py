"""JobManager: a shutdown stops the running job between two products and waits for it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from salescast.api.jobs import JobManager
from salescast.service import TrainingSummary


class SlowTrainer:
    """Stands in for the service: 'trains' one product per release of the gate."""

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.first_done = threading.Event()
        self.trained: list[str] = []

    def train_products(
        self, product_ids: Sequence[str], *, jobs: int, on_progress: Any
    ) -> list[TrainingSummary]:
        summaries = []
        for done, product_id in enumerate(product_ids, start=1):
            self.gate.acquire(timeout=10)
            self.trained.append(product_id)
            summary = TrainingSummary(product_id, 1, None, {})
            summaries.append(summary)
            self.first_done.set()
            on_progress(done, len(product_ids), summary)
        return summaries


def test_shutdown_cancels_the_running_job_after_its_current_product() -> None:
    trainer = SlowTrainer()
    manager = JobManager(trainer, jobs=1)  # type: ignore[arg-type]  # duck-typed service
    job = manager.submit_training(["a", "b", "c", "d"])
    queued = manager.submit_training(["e"])
    trainer.gate.release()
    trainer.first_done.wait(10)
    stopper = threading.Thread(target=manager.shutdown)
    stopper.start()
    trainer.gate.release()  # let the product in progress finish
    stopper.join(10)
    assert not stopper.is_alive()
    assert job.status == "cancelled"
    assert trainer.trained in (["a"], ["a", "b"])
    assert job.done == len(trainer.trained)
    assert queued.status == "queued"  # never started
    assert "e" not in trainer.trained


def test_a_job_runs_to_success_when_nothing_stops_it() -> None:
    trainer = SlowTrainer()
    manager = JobManager(trainer, jobs=1)  # type: ignore[arg-type]
    for _ in range(3):
        trainer.gate.release()
    job = manager.submit_training(["a", "b", "c"])
    deadline = threading.Event()
    for _ in range(100):
        if job.status == "succeeded":
            break
        deadline.wait(0.05)
    assert (job.status, job.done, job.failed) == ("succeeded", 3, 0)
    manager.shutdown()
