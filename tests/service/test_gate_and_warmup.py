"""ComputeGate and Warmup on their own, with events instead of sleeps."""

from __future__ import annotations

import threading

import pytest

from salescast.compute_gate import ComputeBusyError, ComputeGate
from salescast.warmup import Warmup


def test_a_waiter_gets_the_slot_when_it_frees() -> None:
    gate = ComputeGate(max_running=1, max_waiting=1, max_wait_seconds=10)
    inside = threading.Event()
    release = threading.Event()
    done: list[str] = []

    def holder() -> None:
        with gate.slot():
            inside.set()
            release.wait(10)

    def waiter() -> None:
        with gate.slot():
            done.append("waiter")

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    inside.wait(10)
    threads.append(threading.Thread(target=waiter))
    threads[1].start()
    while gate.snapshot().waiting == 0:
        threading.Event().wait(0.01)
    with pytest.raises(ComputeBusyError), gate.slot():  # the line (of one) is full
        pass
    release.set()
    for thread in threads:
        thread.join(10)
    assert done == ["waiter"]
    assert gate.snapshot().rejected == 1
    assert (gate.snapshot().running, gate.snapshot().waiting) == (0, 0)


def test_a_waiter_that_waits_too_long_is_turned_away() -> None:
    gate = ComputeGate(max_running=1, max_waiting=5, max_wait_seconds=0.05)
    with gate.slot(), pytest.raises(ComputeBusyError) as caught, gate.slot():
        pass
    assert caught.value.retry_after_seconds >= 1


class BlockingTarget:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.warmed: list[str] = []

    def list_warmup_products(self, limit: int) -> list[str]:
        return ["a", "b", "untrained", "broken"][:limit]

    def warm_product(self, product_id: str) -> bool:
        self.release.wait(10)
        if product_id == "broken":
            raise RuntimeError("boom")
        self.warmed.append(product_id)
        return product_id != "untrained"


def test_warmup_runs_once_at_a_time_and_counts_each_outcome() -> None:
    target = BlockingTarget()
    warmup = Warmup(target, max_products=4, concurrency=2)
    assert warmup.start() is True
    assert warmup.start() is False  # already running
    assert warmup.progress()["state"] == "running"
    target.release.set()
    warmup.join(10)
    progress = warmup.progress()
    assert progress["state"] == "done"
    assert (progress["total"], progress["done"], progress["skipped"], progress["failed"]) == (
        4,
        2,
        1,
        1,
    )
    assert progress["failures"] == ["broken"]
    assert warmup.start() is True  # a finished warm-up can run again
    warmup.join(10)
