"""One process of the stampede benchmark: 10 callers hit one cold key at one instant.

Run by ``stampede.py`` as ``python bench/stampede_caller.py LIBRARY REDIS_URL
KEY START_AT`` (``START_AT``: a ``time.time()`` all processes wait for;
``REDIS_URL`` may be a ``cluster:HOST:PORT,...`` location, see ``cold_callers``).
Threads for sync libraries, asyncio tasks for async ones. Prints how many
callers got the value.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from cold_callers import build, computation

CALLERS = 10


def run_threads(call: Callable[[str], Any], key: str, start_at: float) -> int:
    results: list[object] = []
    barrier = threading.Barrier(CALLERS)

    def caller() -> None:
        barrier.wait()
        results.append(call(key))

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    time.sleep(max(0.0, start_at - time.time()))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(results)


async def run_tasks(call: Callable[[str], Any], key: str, start_at: float) -> int:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    results = await asyncio.gather(*(call(key) for _ in range(CALLERS)))
    return len(results)


def main() -> int:
    library, url, key, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    call, is_async = build(library, url, computation(url, compute_seconds=0.5))
    if is_async:
        served = asyncio.run(run_tasks(call, key, start_at))
    else:
        served = run_threads(call, key, start_at)
    late = time.time() - start_at
    print(f"{served} {late:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
