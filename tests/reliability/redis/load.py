"""A bounded load loop on loopback: threads sending requests, each outcome timed and kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Outcome:
    path: str
    status: int
    started: float  # time.monotonic() when the request was sent
    ended: float
    body: dict[str, object] | None
    cache: str

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class LoadLoop:
    """`threads` clients sending GETs from `paths(i)` until stopped or `max_requests` sent.

    Every request uses a fresh connection, so the kernel spreads them over
    the server's workers. Transport errors count as status 0.
    """

    def __init__(
        self, base_url: str, paths: Callable[[int], str], *, threads: int = 4,
        max_requests: int = 5_000, max_seconds: float = 120.0,
    ) -> None:  # fmt: skip
        self.base_url = base_url
        self.paths = paths
        self.threads = threads
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> LoadLoop:
        deadline = time.monotonic() + self.max_seconds
        self._workers = [
            threading.Thread(target=self._run, args=(deadline,), daemon=True)
            for _ in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(60)

    def _next_index(self) -> int | None:
        with self._lock:
            if self._sent >= self.max_requests:
                return None
            self._sent += 1
            return self._sent

    def _run(self, deadline: float) -> None:
        with httpx.Client(timeout=30, headers={"Connection": "close"}) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                index = self._next_index()
                if index is None:
                    return
                self._record(client, self.paths(index))

    def _record(self, client: httpx.Client, path: str) -> None:
        started = time.monotonic()
        try:
            response = client.get(self.base_url + path)
            status = response.status_code
            body = response.json() if status == 200 else None
            cache = response.headers.get("x-cache", "")
        except httpx.HTTPError:
            status, body, cache = 0, None, ""
        outcome = Outcome(path, status, started, time.monotonic(), body, cache)
        with self._lock:
            self.outcomes.append(outcome)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
