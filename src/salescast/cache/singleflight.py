"""Single-flight: concurrent callers of one key in this process share one computation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Call(Generic[T]):
    # ``done`` is made by the first follower (under the flight's lock): a
    # call nobody waits for, the common case, costs no Event.
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done: threading.Event | None = None
        self.value: T | None = None
        self.error: BaseException | None = None


class SingleFlight:
    """For threads: the first caller of a key runs ``func``; callers arriving
    while it runs wait and receive the same result (or the same exception).

    ``do`` returns ``(value, leader)``; ``leader`` is ``True`` for the caller
    whose ``func`` ran. Nothing is remembered after the call ends: this is
    not a cache, only a meeting point.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call[Any]] = {}

    def do(self, key: str, func: Callable[[], T]) -> tuple[T, bool]:
        """Run ``func`` once for all concurrent callers of ``key``."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
            elif call.done is None:
                call.done = threading.Event()
            done = call.done
        if not leader:
            assert done is not None
            done.wait()
            if call.error is not None:
                raise call.error
            return call.value, False  # type: ignore[return-value]  # set before done
        try:
            call.value = func()
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
                done = call.done  # no follower can join once the key is gone
            if done is not None:
                done.set()
        return call.value, True

    def in_flight(self) -> int:
        """Keys being computed now."""
        with self._lock:
            return len(self._calls)


class _AsyncCall:
    # ``future`` is made by the first follower: a run nobody waits for, the
    # common case (every L2 hit goes through here), costs no Future.
    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[Any] | None = None


class AsyncSingleFlight:
    """The asyncio version of :class:`SingleFlight`, per event loop.

    Followers await a future the leader resolves. If the leader is
    cancelled, one of its followers starts a new run (the others follow
    it); a follower's own cancellation never cancels the shared computation.
    """

    def __init__(self) -> None:
        self._calls: dict[tuple[int, str], _AsyncCall] = {}

    async def do(self, key: str, func: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Await ``func`` once for all concurrent callers of ``key`` on this loop."""
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        while (call := self._calls.get(slot)) is not None:
            if call.future is None:
                call.future = loop.create_future()
            future = call.future
            try:
                value: T = await asyncio.shield(future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if future.cancelled() and task is not None and not task.cancelling():
                    continue  # the leader was cancelled, not us: lead a new run
                raise
            return value, False
        call = self._calls[slot] = _AsyncCall()
        try:
            result = await func()
        except asyncio.CancelledError:
            if call.future is not None:
                call.future.cancel()
            raise
        except BaseException as exc:
            if call.future is not None:
                call.future.set_exception(exc)
                # Mark retrieved: followers may all be gone by now, and an
                # unretrieved exception would be logged at collection.
                call.future.exception()
            raise
        else:
            if call.future is not None:
                call.future.set_result(result)
            return result, True
        finally:
            del self._calls[slot]

    def in_flight(self) -> int:
        """Keys being computed now, on every event loop."""
        return len(self._calls)
