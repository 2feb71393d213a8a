"""One process of the outage benchmark: timed calls of one library while Redis is down.

Run by ``outage.py`` as ``python bench/outage_caller.py LIBRARY REDIS_URL``:
builds the library's cached function, makes one call while Redis is up,
prints ``READY``, waits for a line on stdin (the parent has broken Redis by
then), then makes ``CALLS`` calls on new keys, printing ``seconds outcome``
after each (``ok`` or the exception's class: some libraries raise).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from cold_callers import build, computation

CALLS = 40


def report(started: float, outcome: str) -> None:
    print(f"{time.perf_counter() - started:.6f} {outcome}", flush=True)


def handshake() -> None:
    print("READY", flush=True)
    sys.stdin.readline()


def run_sync(call: Callable[[str], Any]) -> None:
    call("warm")
    handshake()
    for n in range(CALLS):
        started = time.perf_counter()
        try:
            call(f"key-{n}")
            report(started, "ok")
        except Exception as exc:
            report(started, type(exc).__name__)


async def run_async(call: Callable[[str], Any]) -> None:
    await call("warm")
    handshake()
    for n in range(CALLS):
        started = time.perf_counter()
        try:
            await call(f"key-{n}")
            report(started, "ok")
        except Exception as exc:
            report(started, type(exc).__name__)


def main() -> int:
    call, is_async = build(sys.argv[1], sys.argv[2], computation(None, compute_seconds=0.0))
    if is_async:
        asyncio.run(run_async(call))
    else:
        run_sync(call)
    return 0


if __name__ == "__main__":
    sys.exit(main())
