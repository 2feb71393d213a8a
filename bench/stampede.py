"""Stampede: 4 processes x 10 callers ask one cold key at once; how often is it computed?

Each library gets its own cold key and a fresh counter; every process
(``stampede_caller.py``) waits for the same wall-clock instant, then its 10
callers (threads, or asyncio tasks for async libraries) call the cached
function together. The computation takes 0.5 s and counts itself in Redis.
Target for salescast: 1 computation (single-flight in the process, a Redis
lease across processes).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import workspace
from cold_callers import COUNTER, LIBRARIES, counter_client
from report import Section, run_script

BENCH = Path(__file__).resolve().parent
PROCESSES = 4


def one_round(library: str, url: str, key: str) -> tuple[int, int, float]:
    """(computations, callers served, latest start) for one stampede; ``url`` may be a
    ``cluster:`` location (``cold_callers.cluster_location``)."""
    client = counter_client(url)
    client.delete(COUNTER)
    start_at = time.time() + 4.0  # imports and connections happen before the instant
    args = [sys.executable, str(BENCH / "stampede_caller.py"), library, url, key, f"{start_at}"]
    processes = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(PROCESSES)
    ]
    served, late = 0, 0.0
    for process in processes:
        out, _ = process.communicate(timeout=120)
        if process.returncode == 0 and out.split():
            count, lateness = out.split()[:2]
            served += int(count)
            late = max(late, float(lateness))
    computations = int(client.get(COUNTER) or 0)
    client.close()
    return computations, served, late


def build(quick: bool, command: str) -> Section:
    section = Section("Stampede: 4 processes x 10 callers on a cold key", command)
    rounds = 1 if quick else 3
    rows: list[list[object]] = []
    chart: dict[str, float] = {}
    with workspace.redis_server() as server:
        for library in LIBRARIES:
            results = [one_round(library, server.url, f"{library}-{n}") for n in range(rounds)]
            counts = [computations for computations, _, _ in results]
            served = min(result[1] for result in results)
            chart[library] = statistics.median(counts)
            target = ""
            if library == "salescast":
                measured = f"{max(counts)} (worst round)"
                target = section.target(
                    "stampede: 1 computation for 4 x 10 callers", measured, max(counts) == 1
                )[2]
            rows.append([library, ", ".join(map(str, counts)), f"{served} / 40", target])
    section.text(
        __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        f"{rounds} round(s) per library; `+lock` rows use the library's own option "
        "(dogpile `distributed_lock`, cashews `lock=True`, aiocache `cached_stampede`).",
    )
    section.table(
        ["library", "computations per round", "callers served (min)", "target 1 (salescast)"], rows
    )
    section.charts["stampede"] = chart
    return section


if __name__ == "__main__":
    sys.exit(run_script("stampede.py", build))
