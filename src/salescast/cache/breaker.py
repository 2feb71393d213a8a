"""A circuit breaker around L2: skip Redis at once after repeated failures, probe, recover.

Its snapshot names every counter field by field, as the statistics' do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger("salescast.cache")


class BreakerState(StrEnum):
    """``closed``: use Redis. ``open``: skip it. ``half_open``: one probe is in flight."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Read once: looking an enum member up on its class costs a tenth of a microsecond,
# a good part of the closed breaker's answer on every L2 call.
_CLOSED = BreakerState.CLOSED


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """The breaker's state and its counters since creation."""

    state: BreakerState
    consecutive_failures: int
    failures: int
    opened: int
    skipped: int
    probes: int
    open_for_seconds: float
    last_error: str | None = None
    """What the latest failure said (kept after recovery, for the record)."""


class CircuitBreaker:
    """Closed → open after ``failure_threshold`` consecutive failures (or at
    once on :meth:`trip`, for evidence worth that many) → after
    ``reset_after`` seconds exactly ONE caller is let through as a probe
    (half-open) while every other caller keeps skipping → closed when the
    probe succeeds, open again (for another pause) when it fails. A timeout
    (:meth:`record_timeout`) opens it at once with the probe due at once,
    not after the pause.

    With a background ``probe`` (``set_probe``), the probe after the pause is
    not a caller's request but that function, run on its own thread: every
    caller keeps skipping until it answers, so a frozen Redis costs a probe
    timeout to nobody's request.

    ``allow()`` is the only question callers ask before touching Redis; when
    it says ``False`` no I/O happens. Each transition is logged once, as one
    line, on the ``salescast.cache`` logger; never once per request.
    ``clock`` (monotonic seconds) is injectable so tests need not sleep.
    Thread-safe; the lock is never held during I/O.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        reset_after: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "redis",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self._probe: Callable[[], object] | None = None
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._failures = 0
        self._opened = 0
        self._skipped = 0
        self._probes = 0
        self._opened_at = 0.0
        self._probe_at = 0.0
        self._first_failure_at: float | None = None
        self._last_error: str | None = None

    @property
    def state(self) -> BreakerState:
        """The current state."""
        return self._state

    def set_probe(self, probe: Callable[[], object] | None) -> None:
        """Probe with ``probe()`` on a thread of its own (it raises when Redis is still
        unreachable) instead of letting a caller's request probe."""
        self._probe = probe

    def allow(self) -> bool:
        """``True`` when the caller may talk to Redis now (possibly as the probe)."""
        if self._state is _CLOSED:
            # Every L2 call asks: the closed case reads one attribute, no lock
            # (a transition racing with it is the same as one just after it).
            return True
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True  # closed by another thread since the check above
            if self._state is BreakerState.OPEN and self._clock() >= self._probe_at:
                self._state = BreakerState.HALF_OPEN
                self._probes += 1
                logger.info(
                    "%s: circuit breaker half-open, probing with one %s after %.1f s",
                    self.name,
                    "request" if self._probe is None else "background ping",
                    self._clock() - self._opened_at,
                )
                if self._probe is None:
                    return True
                threading.Thread(
                    target=self._run_probe, args=(self._probe,), name="breaker-probe", daemon=True
                ).start()
            self._skipped += 1
            return False

    def _run_probe(self, probe: Callable[[], object]) -> None:
        try:
            probe()
        except Exception as exc:  # any failure of the probe means "still down"
            self.record_failure(exc)
            return
        self.record_success()

    def record_success(self) -> None:
        """The call let through by ``allow()`` worked."""
        if self._state is _CLOSED and self._consecutive == 0:
            return  # nothing to change, the common case: no lock
        with self._lock:
            if self._state is BreakerState.CLOSED and self._consecutive == 0:
                return
            if self._state is not BreakerState.CLOSED or self._first_failure_at is not None:
                since = self._first_failure_at
                down_for = 0.0 if since is None else self._clock() - since
                logger.warning(
                    "%s: back after %.1f s; circuit breaker closed, using it again",
                    self.name,
                    down_for,
                )
            self._state = BreakerState.CLOSED
            self._consecutive = 0
            self._first_failure_at = None

    def abandon_probe(self) -> None:
        """A call let through by ``allow()`` ended without an answer (its task was
        cancelled, or a bug raised): if it was a caller's probe, the next caller
        probes. Without this the breaker would stay half-open, skipping Redis
        for good. Nothing changes in any other state."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN and self._probe is None:
                self._state = BreakerState.OPEN
                self._probe_at = self._clock()

    def record_failure(self, error: BaseException | str) -> None:
        """The call let through by ``allow()`` failed."""
        with self._lock:
            self._last_error = str(error)
            self._failures += 1
            self._consecutive += 1
            if self._first_failure_at is None:
                self._first_failure_at = self._clock()
                logger.warning(
                    "%s: request failed (%s); circuit opens after %d consecutive failures",
                    self.name,
                    error,
                    self.failure_threshold,
                )
            if self._state is BreakerState.HALF_OPEN:
                self._trip(f"probe failed ({error})")
            elif self._state is BreakerState.CLOSED and self._consecutive >= self.failure_threshold:
                self._trip(f"{self._consecutive} consecutive failures, last: {error}")

    def record_timeout(self, error: BaseException | str) -> None:
        """The call let through by ``allow()`` timed out: open now, probe at once.

        A request that waited a whole socket timeout on a connection that
        usually answers in well under a millisecond is strong evidence, and
        each further caller let through would wait as long: ``failure_threshold``
        timeouts in a row would cost that many callers the timeout each.
        Opening at once spares them; probing at once (the background ping,
        or the next caller when there is none) keeps a healthy Redis that
        was slow once (a fork for a snapshot, one slow command) from being
        skipped for a whole pause. A probe that times out too opens the
        breaker for the usual pause. When not closed it counts as
        :meth:`record_failure` does.
        """
        with self._lock:
            if self._state is BreakerState.CLOSED:
                self._last_error = f"timed out: {error}"
                self._failures += 1
                self._open_at_once(f"timed out: {error}", pause=0.0)
                return
        self.record_failure(error)

    def trip(self, reason: str) -> None:
        """Open now, as if ``failure_threshold`` calls had failed in a row.

        For evidence at least that strong that Redis does not answer: the
        invalidation subscription's PING left unanswered for three ping
        intervals (3 s by default, twelve socket timeouts' worth of silence
        on a connection that normally answers in well under a millisecond).
        Opening then, before any caller has asked Redis, spares the callers
        the ``failure_threshold`` timeouts they would otherwise pay to find
        out. Counted as one failure. When not closed it changes nothing: open
        stays open for its pause, and a probe in flight decides for itself.
        """
        with self._lock:
            self._last_error = reason
            self._failures += 1
            if self._state is BreakerState.CLOSED:
                self._open_at_once(reason)

    def _open_at_once(self, reason: str, *, pause: float | None = None) -> None:
        # Caller holds the lock; the breaker is closed. One failure counted as
        # ``failure_threshold`` of them, then open.
        self._consecutive = max(self._consecutive + 1, self.failure_threshold)
        if self._first_failure_at is None:
            self._first_failure_at = self._clock()
        self._trip(reason, pause=pause)

    def snapshot(self) -> BreakerSnapshot:
        """State and counters now."""
        with self._lock:
            open_for = 0.0
            if self._state is not BreakerState.CLOSED:
                open_for = self._clock() - self._opened_at
            return BreakerSnapshot(
                state=self._state,
                consecutive_failures=self._consecutive,
                failures=self._failures,
                opened=self._opened,
                skipped=self._skipped,
                probes=self._probes,
                open_for_seconds=open_for,
                last_error=self._last_error,
            )

    def _trip(self, reason: str, *, pause: float | None = None) -> None:
        # Caller holds the lock.
        pause = self.reset_after if pause is None else pause
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._probe_at = self._opened_at + pause
        self._opened += 1
        then = f"skipping it for {pause:.1f} s" if pause > 0 else "skipping it, probing at once"
        logger.warning("%s: circuit breaker open (%s); %s", self.name, reason, then)
