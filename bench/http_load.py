"""HTTP under load: warm `GET /products/{id}/forecast` next to a bare FastAPI endpoint.

Two servers run at once: ``salescast serve`` (L1 + Redis, warm) and
``bare_app.py`` (FastAPI returning the same bytes, no work; also as a plain ``def`` handler
with two plain ``def`` dependencies, like salescast's route), each with the
same number of uvicorn workers and uvicorn's default logging (access log on,
as ``salescast serve`` runs it). wrk (Debian's package, one thread, 16
connections, pinned to CPU 1 with taskset) loads one server at a time,
alternating in blocks. Throughput and latency percentiles come from wrk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import workspace
from claims import server_env
from report import Section, run_script
from workspace import UvicornServer, free_port

BENCH = Path(__file__).resolve().parent
CONNECTIONS = 16
PATH = f"/products/{workspace.M5_PRODUCTS[0]}/forecast?horizon=30"


@contextlib.contextmanager
def bare_server(body: bytes, workers: int) -> Iterator[str]:
    """bare_app.py under uvicorn on a free port; yields its base URL, stops its group."""
    folder = Path(tempfile.mkdtemp(prefix="salescast-bare-"))
    (folder / "body.json").write_bytes(body)
    port = free_port()
    args = [
        sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(BENCH),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BARE_BODY": str(folder / "body.json")}
    with (folder / "log").open("ab") as log:
        process = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(url + PATH)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)


def wait_until_answers(url: str, timeout: float = 30.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wrk(url: str, seconds: float) -> dict[str, float]:
    """One wrk run: requests/s and p50/p95/p99 in ms."""
    script = str(BENCH / "wrk_report.lua")
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "-s", script, url]
    if shutil.which("taskset"):
        args = ["taskset", "-c", "1", *args]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    return {
        "rps": raw["requests"] / raw["seconds"],
        "p50": raw["p50"] / 1000,
        "p95": raw["p95"] / 1000,
        "p99": raw["p99"] / 1000,
        "errors": raw["errors"] + raw["non2xx"],
    }


def alternate(urls: dict[str, str], *, blocks: int, seconds: float) -> dict[str, dict[str, float]]:
    """wrk against each URL in turn, ``blocks`` times; the median of each figure."""
    for url in urls.values():
        wrk(url, 1)  # warm every worker's L1 and connections
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    for block in range(blocks):
        shift = block % len(urls)
        order = list(urls)[shift:] + list(urls)[:shift]
        for name in order:
            runs[name].append(wrk(urls[name], seconds))
    return {
        name: {key: statistics.median(run[key] for run in results) for key in results[0]}
        for name, results in runs.items()
    }


def measure(workers: int, redis_url: str, *, quick: bool) -> dict[str, dict[str, float]]:
    env = server_env(workspace.ensure_m5_store(), redis_url)
    with UvicornServer(env, workers=workers) as server:
        body = wait_until_answers(server.url + PATH)
        with bare_server(body, workers) as bare_url:
            urls = {
                "salescast": server.url + PATH,
                "bare FastAPI": bare_url + PATH,
                "bare, def + 2 def deps": f"{bare_url}/sync{PATH}",
            }
            return alternate(urls, blocks=3 if quick else 5, seconds=3 if quick else 8)


def build(quick: bool, command: str) -> Section:
    section = Section("HTTP: warm forecasts under load, next to a bare endpoint", command)
    if shutil.which("wrk") is None:
        section.text("wrk is not installed (`apt-get install -y wrk`); nothing measured.")
        return section
    results: dict[int, dict[str, dict[str, float]]] = {}
    with workspace.redis_server() as redis:
        for workers in (1, 2):
            results[workers] = measure(workers, redis.url, quick=quick)
    section.text(
        __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        f"`GET {PATH}` ({CONNECTIONS} connections); median of {3 if quick else 5} alternating "
        f"blocks of {3 if quick else 8} s. Both servers and wrk share the machine's 2 cores "
        "with each other (and with other work on this machine): with 2 workers the servers "
        "and wrk fight for the same 2 cores, so those rows vary most from run to run.",
    )
    section.table(
        ["workers", "server", "req/s", "vs bare", "p50 ms", "p95 ms", "p99 ms", "errors"],
        rows_for(results),
    )
    section.text("### Targets")
    section.table(["target", "measured", "verdict"], target_rows(section, results))
    section.charts["http"] = {str(w): r for w, r in results.items()}
    return section


def rows_for(results: dict[int, dict[str, dict[str, float]]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for workers, servers in results.items():
        bare = servers["bare FastAPI"]["rps"]
        for name, figures in servers.items():
            rows.append(
                [workers, name, f"{figures['rps']:,.0f}", f"{figures['rps'] / bare:.2f}x"]
                + [f"{figures[key]:.2f}" for key in ("p50", "p95", "p99")]
                + [f"{figures['errors']:.0f}"]
            )
    return rows


def target_rows(
    section: Section, results: dict[int, dict[str, dict[str, float]]]
) -> list[list[str]]:
    rows: list[list[str]] = []
    for workers, servers in results.items():
        bare = servers["bare FastAPI"]
        share = servers["salescast"]["rps"] / bare["rps"]
        tail = servers["salescast"]["p99"] / bare["p99"]
        rows.append(
            section.target(
                f"{workers} worker(s): >= 0.85x the bare endpoint's req/s",
                f"{share:.2f}x",
                share >= 0.85,
            )
        )
        rows.append(
            section.target(
                f"{workers} worker(s): p99 <= 1.25x the bare endpoint's p99",
                f"{tail:.2f}x ({servers['salescast']['p99']:.2f} vs {bare['p99']:.2f} ms)",
                tail <= 1.25,
            )
        )
    return rows


if __name__ == "__main__":
    sys.exit(run_script("http_load.py", build))
