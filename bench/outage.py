"""Outage: time per call while Redis refuses connections, and while it is frozen.

For each library (one process each, ``outage_caller.py``): one call while
Redis is up, then Redis is killed (connections refused) or frozen with
SIGSTOP (connections open, nothing answers), then 40 calls on new keys (each
a miss, so each would need Redis). A call that has not returned after the
cap is reported as hanging. Each library runs with its default timeouts;
salescast's are 0.25 s with a circuit breaker (3 failures, 2 s). Target for
salescast: one timeout, then microseconds.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
from pathlib import Path

import workspace
from cold_callers import LIBRARIES
from interleave import fmt_seconds
from report import Section, run_script

BENCH = Path(__file__).resolve().parent
LIBRARIES_HERE = [name for name in LIBRARIES if not name.endswith("+lock")]


def timed_calls(library: str, mode: str, cap_seconds: float) -> list[tuple[float, str]]:
    """(seconds, outcome) of each call made before the cap."""
    with workspace.redis_server() as server:
        args = [sys.executable, str(BENCH / "outage_caller.py"), library, server.url]
        process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        if process.stdout.readline().strip() != "READY":
            process.kill()
            return []
        server.kill() if mode == "refused" else server.freeze()
        calls: list[tuple[float, str]] = []
        reader = threading.Thread(target=read_calls, args=(process.stdout, calls), daemon=True)
        process.stdin.write("go\n")
        process.stdin.flush()
        reader.start()
        reader.join(timeout=cap_seconds)
        process.kill()
        process.wait()
    return calls


def read_calls(stream: object, calls: list[tuple[float, str]]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        seconds, outcome = line.split()
        calls.append((float(seconds), outcome))


def row_for(library: str, mode: str, calls: list[tuple[float, str]], cap: float) -> list[object]:
    if not calls:
        return [library, mode, f"no answer in {cap:g} s", "", "", "", "", "0 / 40"]
    times = [seconds for seconds, _ in calls]
    errors = sorted({outcome for _, outcome in calls if outcome != "ok"})
    steady = times[-20:] if len(times) >= 25 else []
    return [
        library,
        mode,
        fmt_seconds(times[0]),
        fmt_seconds(statistics.median(times[1:5])) if len(times) > 1 else "",
        fmt_seconds(statistics.median(steady)) if steady else "(not reached)",
        sum(seconds >= 0.05 for seconds in times),
        ", ".join(errors) or "none",
        f"{len(times)} / 40",
    ]


def salescast_targets(section: Section, mode: str, calls: list[tuple[float, str]]) -> None:
    times = [seconds for seconds, _ in calls]
    slow = sum(seconds >= 0.05 for seconds in times)
    steady = statistics.median(times[-20:]) if len(times) >= 25 else float("inf")
    section.target(f"Redis {mode}: at most one call >= 50 ms", f"{slow} of {len(times)}", slow <= 1)
    section.target(
        f"Redis {mode}: steady state in microseconds (< 1 ms)", fmt_seconds(steady), steady < 1e-3
    )


def build(quick: bool, command: str) -> Section:
    section = Section("Outage: Redis refused and frozen", command)
    cap = 15.0 if quick else 40.0
    rows: list[list[object]] = []
    for mode in ("refused", "frozen"):
        for library in LIBRARIES_HERE:
            calls = timed_calls(library, mode, cap)
            rows.append(row_for(library, mode, calls, cap))
            if library == "salescast":
                salescast_targets(section, mode, calls)
    section.text(
        __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        f"Cap: {cap:g} s per library and mode. Steady state = median of the last 20 of 40 calls.",
        "Target for salescast: one call >= 50 ms (one timeout), then microseconds.",
    )
    section.table(
        [
            "library",
            "Redis",
            "first call",
            "calls 2-5 (median)",
            "steady state",
            "calls >= 50 ms",
            "raised",
            "calls done",
        ],
        rows,
    )
    section.table(["target", "measured", "verdict"], section.targets)
    return section


if __name__ == "__main__":
    sys.exit(run_script("outage.py", build))
