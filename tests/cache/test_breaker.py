"""Circuit breaker transitions on an injected clock, one probe, one log line per transition."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from salescast.cache import BreakerState, CircuitBreaker
from salescast.cache.guard import BreakerGuard


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_after=2.0, clock=clock)


def test_breaker_opens_after_the_threshold_of_consecutive_failures(
    breaker: CircuitBreaker,
) -> None:
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure("boom")
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure("boom")
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.snapshot().skipped == 1


def test_a_success_resets_the_consecutive_count(breaker: CircuitBreaker) -> None:
    breaker.record_failure("a")
    breaker.record_failure("b")
    breaker.record_success()
    breaker.record_failure("c")
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 1


def test_after_the_pause_exactly_one_caller_probes(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure("down")
    clock.now = 1.9
    assert not breaker.allow()
    clock.now = 2.0
    allowed: list[bool] = []
    barrier = threading.Barrier(10)

    def ask() -> None:
        barrier.wait()
        allowed.append(breaker.allow())

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.snapshot().probes == 1


def test_a_successful_probe_closes_the_breaker(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure("down")
    clock.now = 2.5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_a_failed_probe_opens_the_breaker_for_another_pause(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure("down")
    clock.now = 2.0
    assert breaker.allow()
    breaker.record_failure("still down")
    assert breaker.state is BreakerState.OPEN
    clock.now = 3.9
    assert not breaker.allow()
    clock.now = 4.0
    assert breaker.allow()


def test_each_transition_is_logged_once_not_per_request(
    breaker: CircuitBreaker, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="salescast.cache")
    for _ in range(3):
        breaker.record_failure("ConnectionError: refused")
    for _ in range(100):
        breaker.allow()
    clock.now = 2.0
    breaker.allow()
    breaker.record_success()
    for _ in range(100):
        breaker.allow()
        breaker.record_success()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 4, messages
    assert "request failed" in messages[0]
    assert "circuit breaker open" in messages[1]
    assert "probing" in messages[2]
    assert "back after" in messages[3]


def test_a_background_probe_closes_the_breaker_without_letting_a_caller_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    answered = threading.Event()
    release = threading.Event()

    def probe() -> None:
        release.wait(5)
        answered.set()

    breaker.set_probe(probe)
    for _ in range(breaker.failure_threshold):
        breaker.record_failure("down")
    clock.now += breaker.reset_after
    assert breaker.allow() is False  # the caller skips; the probe runs on its own thread
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() is False
    release.set()
    assert answered.wait(5)
    deadline = time.monotonic() + 5
    while breaker.state is not BreakerState.CLOSED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() is True
    assert breaker.snapshot().probes == 1


def test_a_failed_background_probe_opens_the_breaker_for_another_pause(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    failed = threading.Event()

    def probe() -> None:
        failed.set()
        raise ConnectionError("still down")

    breaker.set_probe(probe)
    for _ in range(breaker.failure_threshold):
        breaker.record_failure("down")
    clock.now += breaker.reset_after
    assert breaker.allow() is False
    assert failed.wait(5)
    deadline = time.monotonic() + 5
    while breaker.state is not BreakerState.OPEN and time.monotonic() < deadline:
        time.sleep(0.01)
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow() is False  # a new pause started at the failed probe


@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_a_trip_opens_at_once_whatever_the_threshold(clock: FakeClock, threshold: int) -> None:
    breaker = CircuitBreaker(failure_threshold=threshold, reset_after=2.0, clock=clock)
    breaker.trip("no PONG for 3.0 s")
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    snapshot = breaker.snapshot()
    assert (snapshot.opened, snapshot.failures) == (1, 1)
    assert snapshot.consecutive_failures == threshold
    clock.now = 2.0
    assert breaker.allow()  # the usual pause and probe follow
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_trip_changes_nothing_unless_closed(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure("down")
    clock.now = 1.5
    breaker.trip("silent")  # open: the pause keeps its start, no second opening
    clock.now = 2.0
    assert breaker.allow()  # the probe
    breaker.trip("silent")  # half-open: the probe decides
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().opened == 1


def test_a_trip_is_logged_as_one_opening_and_one_return(
    breaker: CircuitBreaker, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="salescast.cache")
    breaker.trip("invalidation subscription: no PONG for 3.0 s")
    clock.now = 2.0
    breaker.allow()
    breaker.record_success()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3, messages
    assert "circuit breaker open (invalidation subscription: no PONG" in messages[0]
    assert "probing" in messages[1]
    assert "back after 2.0 s" in messages[2]


def test_a_timeout_opens_at_once_and_lets_the_next_caller_probe_at_once(
    breaker: CircuitBreaker, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="salescast.cache")
    assert breaker.allow()
    breaker.record_timeout("Timeout reading from socket")
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow()  # no pause: this caller is the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # one probe only
    breaker.record_timeout("Timeout reading from socket")  # the probe timed out too
    assert breaker.state is BreakerState.OPEN
    clock.now = 1.9
    assert not breaker.allow()  # now the usual pause
    clock.now = 2.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    snapshot = breaker.snapshot()
    assert (snapshot.failures, snapshot.opened, snapshot.probes) == (2, 2, 2)
    messages = [record.getMessage() for record in caplog.records]
    assert "probing at once" in messages[0]
    assert len(messages) == 5, messages  # open, probe, open again, probe, back


def test_a_timeout_while_open_does_not_shorten_the_pause(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure("refused")
    clock.now = 0.5
    breaker.record_timeout("a straggler let through before the breaker opened")
    assert not breaker.allow()
    clock.now = 2.0
    assert breaker.allow()


def probe_due(breaker: CircuitBreaker, clock: FakeClock) -> BreakerGuard:
    """Open ``breaker`` and move past its pause: the next caller is the probe."""
    for _ in range(3):
        breaker.record_failure("down")
    clock.now = 2.0
    return BreakerGuard(breaker)


def test_a_probe_that_ends_without_an_answer_hands_the_probe_to_the_next_caller(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    guard = probe_due(breaker, clock)

    def crash() -> None:
        raise RuntimeError("a bug, not Redis")

    with pytest.raises(RuntimeError):
        guard.call(crash)  # this caller was the probe
    assert breaker.state is BreakerState.OPEN
    assert guard.call(lambda: "answer") == "answer"  # the next caller probes at once
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.anyio
async def test_a_cancelled_probe_does_not_leave_the_breaker_half_open(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    guard = probe_due(breaker, clock)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.sleep(60)

    probe = asyncio.create_task(guard.acall(hang))
    await started.wait()
    assert breaker.state is BreakerState.HALF_OPEN
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.state is BreakerState.OPEN
    assert guard.call(lambda: 1) == 1
    assert breaker.state is BreakerState.CLOSED


def test_an_abandoned_call_changes_nothing_when_the_breaker_is_not_probing(
    breaker: CircuitBreaker,
) -> None:
    breaker.abandon_probe()
    assert breaker.state is BreakerState.CLOSED
    for _ in range(3):
        breaker.record_failure("down")
    breaker.abandon_probe()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()  # still the whole pause
