"""ComputeGate: bounds CPU-heavy work (Prophet) so a burst of cold requests queues, then sheds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class ComputeBusyError(Exception):
    """Every compute slot is taken and the waiting line is full (HTTP 429)."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"the server is busy computing forecasts; retry in {retry_after_seconds} second(s)"
        )
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class GateSnapshot:
    running: int
    waiting: int
    max_running: int
    max_waiting: int
    rejected: int


class ComputeGate:
    """At most `max_running` computations at once, at most `max_waiting` more in line.

    A caller beyond both limits, or one that waited `max_wait_seconds` without
    a slot, gets ComputeBusyError at once instead of piling onto the machine:
    Prophet prediction is CPU-bound, so more parallel runs than cores only
    make every request slower. Cache hits never pass through the gate, and
    single-flight upstream means one cold key takes one slot however many ask.
    Thread-safe.
    """

    def __init__(self, *, max_running: int, max_waiting: int, max_wait_seconds: float) -> None:
        if max_running < 1 or max_waiting < 0 or max_wait_seconds <= 0:
            raise ValueError("max_running >= 1, max_waiting >= 0, max_wait_seconds > 0")
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self._slots = threading.BoundedSemaphore(max_running)
        self._lock = threading.Lock()
        self._running = 0
        self._waiting = 0
        self._rejected = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one compute slot for the body; raises ComputeBusyError when full."""
        if not self._slots.acquire(blocking=False):
            self._wait_for_slot()
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
            self._slots.release()

    def _wait_for_slot(self) -> None:
        with self._lock:
            if self._waiting >= self.max_waiting:
                self._rejected += 1
                raise ComputeBusyError(self._retry_after())
            self._waiting += 1
        try:
            acquired = self._slots.acquire(timeout=self.max_wait_seconds)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            with self._lock:
                self._rejected += 1
            raise ComputeBusyError(self._retry_after())

    def _retry_after(self) -> int:
        # A rough drain time: the line ahead over the slots, a second per run.
        return max(1, (self._waiting + self.max_running) // self.max_running)

    def snapshot(self) -> GateSnapshot:
        with self._lock:
            return GateSnapshot(
                self._running, self._waiting, self.max_running, self.max_waiting, self._rejected
            )
