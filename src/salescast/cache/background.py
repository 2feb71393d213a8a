"""Work a read hands off so that its caller does not wait: refreshes and Redis TTL renewals.

A hit that finds its entry due for a refresh (``salescast.cache.lifetime``)
serves the value it has and starts the refresh here; a hit that renews a
sliding L1 entry renews the Redis entry here. Each job has a key, and a key
whose job is still queued or running is not started again: one refresh per
entry per process at a time (across processes, the lease decides).

Two runners, one per face of the flow, with one method name (``start``) so
that the generated sync flow calls the same thing as its asyncio source:

- ``ThreadRunner`` (sync face, and every Redis TTL renewal): one worker
  thread, started on first use and again after a fork.
- ``TaskRunner`` (asyncio face): a task on the running event loop, since an
  asyncio computation must run on its loop.

A job's failure is logged and dropped: the value already served stays
served until its stale window ends, and the next read starts the job again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

logger = logging.getLogger("salescast.cache")


class ThreadRunner:
    """Runs plain callables on one background thread, one at a time per key."""

    def __init__(self, *, name: str = "salescast-cache-background") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._running: set[Hashable] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = os.getpid()

    def start(self, key: Hashable, job: Callable[[], Any]) -> bool:
        """Queue ``job`` unless a job of ``key`` is queued or running; ``True`` when queued."""
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's thread is not here
                self._executor, self._running, self._pid = None, set(), os.getpid()
            if key in self._running:
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
            self._running.add(key)
            executor = self._executor
        try:
            executor.submit(self._run, key, job)
        except RuntimeError:  # shut down (interpreter exit, close): nothing runs
            with self._lock:
                self._running.discard(key)
            return False
        return True

    def _run(self, key: Hashable, job: Callable[[], Any]) -> None:
        try:
            job()
        except Exception:
            logger.warning("background cache job %r failed", key, exc_info=True)
        finally:
            with self._lock:
                self._running.discard(key)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no job is queued or running (tests, shutdown); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class TaskRunner:
    """Runs coroutine functions as tasks on the running loop, one at a time per key."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[Any]] = {}

    def start(self, key: Hashable, job: Callable[[], Awaitable[Any]]) -> bool:
        """Start ``job()`` as a task unless one of ``key`` runs; ``True`` when started."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        running = self._running.get(key)
        # A task of another loop (closed, or another thread's) does not block this one.
        if running is not None and not running.done() and running.get_loop() is loop:
            return False
        task = loop.create_task(self._run(key, job))
        self._running[key] = task  # a strong reference until it ends
        return True

    async def _run(self, key: Hashable, job: Callable[[], Awaitable[Any]]) -> None:
        try:
            await job()
        except Exception:
            logger.warning("background cache job %r failed", key, exc_info=True)
        finally:
            task = self._running.get(key)
            if task is asyncio.current_task():
                del self._running[key]

    async def wait_idle(self) -> None:
        """Await every task started so far (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
