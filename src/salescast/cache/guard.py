"""Every L2 call goes through here: circuit breaker first, failures counted, never raised."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar, TypeVarTuple

from salescast.cache.breaker import BreakerState, CircuitBreaker
from salescast.cache.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    PoolExhaustedError,
)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Unavailable:
    """What an L2 call returns instead of a result: ``SKIPPED`` or ``FAILED``."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return self.reason.upper()


SKIPPED: Final = Unavailable("skipped")
"""The breaker is open: no I/O happened."""
FAILED: Final = Unavailable("failed")
"""The backend raised ``BackendUnavailableError`` (already counted by the breaker)."""


class BreakerGuard:
    """Runs L2 operations behind a :class:`CircuitBreaker`.

    ``call(op)`` returns the operation's result, ``SKIPPED`` when the breaker
    is open (no I/O at all), or ``FAILED`` when the backend raised
    ``BackendUnavailableError`` (counted by the breaker and ``on_error``).
    Test the result with ``isinstance(result, Unavailable)``.
    Any other exception is a bug and propagates.
    """

    def __init__(
        self,
        breaker: CircuitBreaker,
        on_error: Callable[[BackendUnavailableError], None] | None = None,
    ) -> None:
        self.breaker = breaker
        self._on_error = on_error

    def call(self, operation: Callable[[*Ts], T], *args: *Ts) -> T | Unavailable:
        """Run ``operation(*args)`` if the breaker allows it.

        Arguments rather than a closure: the GET of every L2 hit comes
        through here, and a lambda plus its frame cost a measurable part of
        one (bench/l2_breakdown.py).
        """
        if not self.breaker.allow():
            return SKIPPED
        try:
            result = operation(*args)
        except BackendUnavailableError as exc:
            self.failed(exc)
            return FAILED
        except BaseException:
            self.breaker.abandon_probe()
            raise
        self.breaker.record_success()
        return result

    async def acall(self, operation: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T | Unavailable:
        """As :meth:`call`, awaiting ``operation(*args)``."""
        if not self.breaker.allow():
            return SKIPPED
        try:
            result = await operation(*args)
        except BackendUnavailableError as exc:
            self.failed(exc)
            return FAILED
        except BaseException:  # cancelled while waiting on Redis, above all
            self.breaker.abandon_probe()
            raise
        self.breaker.record_success()
        return result

    def failed(self, exc: BackendUnavailableError) -> None:
        """Count a failure of an operation the breaker allowed (as :meth:`call` does)."""
        if self._on_error is not None:
            self._on_error(exc)
        if isinstance(exc, PoolExhaustedError) and self.breaker.state is BreakerState.CLOSED:
            # Our own pool is busy; Redis answered everyone else. Not a reason
            # to cut every caller off from L2.
            return
        if isinstance(exc, BackendTimeoutError):
            self.breaker.record_timeout(exc)  # opens at once, probes at once
        else:
            self.breaker.record_failure(exc)
