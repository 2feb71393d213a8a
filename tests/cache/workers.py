"""Code that runs in spawned worker processes for the multi-process cache tests."""

from __future__ import annotations

import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

import redis

from salescast.cache import TieredCache


def stampede_worker(
    url: str, prefix: str, counter_key: str, go: Event, callers: int, results: Any
) -> None:
    """``callers`` threads ask for one cold key at once; each computation INCRs a counter."""
    cache = TieredCache.from_url(url, prefix=prefix)
    counter = redis.Redis.from_url(url, protocol=2)
    cache.wait_subscribed(5.0)
    results.put("ready")

    def compute() -> str:
        counter.incr(counter_key)
        time.sleep(0.3)
        return "computed"

    sources: list[str] = []

    def caller() -> None:
        go.wait(10)
        lookup = cache.get_or_compute("data", "cold-key", compute, ttl=60)
        sources.append(f"{lookup.value}/{lookup.source.value}")

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(sources)
    counter.close()
    cache.close()


def command_worker(url: str, prefix: str, conn: Connection) -> None:
    """A second 'worker process' the test drives through a pipe."""
    cache = TieredCache.from_url(url, prefix=prefix)
    conn.send(cache.wait_subscribed(5.0))
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                break
            conn.send(_run(cache, command, args))
    finally:
        cache.close()
        conn.close()


def _run(cache: TieredCache, command: str, args: tuple[Any, ...]) -> Any:
    if command == "get_or_compute":
        namespace, key, value, tags = args
        lookup = cache.get_or_compute(namespace, key, lambda: value, ttl=60, tags=tags)
        return lookup.value, lookup.source.value
    if command == "l1_entries":
        assert cache.l1 is not None
        return cache.l1.usage().entries
    if command == "subscription":
        assert cache.subscriber is not None
        return cache.subscriber.state.value, cache.subscriber.resubscriptions
    raise ValueError(command)
