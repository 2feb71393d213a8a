"""Training throughput by mode: the local pool and a Dask cluster, 1 and 2 each (store-item series).

The store-item file (500 series, 5 years of daily sales each) is ingested
once; each mode then trains the same series on its own copy of that store
through ``SalescastService.train_products`` (what ``salescast train --all
--jobs N`` and ``--scheduler tcp://...`` call): a holdout fit for the
backtest and the final fit, per series, written to the store by this process.
The local pool spawns its processes per batch (they import Prophet each
time); the Dask cluster is a ``LocalCluster`` of single-threaded worker
processes started before the clock and warmed up (Prophet imported), as a
long-lived cluster is. The modes run one after the other.

The scheduler's overhead per task is measured on the 2-worker cluster with
no-op tasks: one at a time (submit, wait for the result: the round trip a
product pays at least once) and many at once through ``as_completed`` (what
a batch pays per product when the cluster is kept busy).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import workspace
from report import Section, run_script

from salescast.forecasting.dask_batch import DaskScheduler

# `make bench` trains all 500 (the 100-series run of the first session took 95 s for
# both local modes, so about 8 min per local mode); `make bench-quick` 20; `--series N`.
ALL_SERIES = 500
FULL_SERIES = ALL_SERIES
QUICK_SERIES = 20
NO_OP_ROUND_TRIPS = 200
NO_OP_BATCH = 2000


def train_seconds(
    series: int, *, jobs: int = 1, scheduler: DaskScheduler | None = None
) -> tuple[float, int]:
    """Seconds to train the first ``series`` products in one mode; versions made."""
    with tempfile.TemporaryDirectory(prefix="salescast-train-") as folder:
        database = Path(folder) / "store.db"
        shutil.copyfile(workspace.ensure_store_item_store(), database)
        service = workspace.service_with("computed", database, None)
        ids = sorted(service.list_product_ids())[:series]
        started = time.perf_counter()
        summaries = service.train_products(ids, jobs=jobs, scheduler=scheduler)
        seconds = time.perf_counter() - started
        service.close()
    return seconds, sum(summary.version is not None for summary in summaries)


@contextmanager
def dask_cluster(workers: int) -> Iterator[str]:
    """A warmed-up LocalCluster of ``workers`` single-threaded processes; yields its address."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        processes=True,
        n_workers=workers,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        with Client(cluster, set_as_default=False) as client:
            client.run(_import_prophet)
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _import_prophet() -> None:
    import prophet  # noqa: F401  # warm-up: what a long-lived worker has done already


def _no_op(value: int) -> int:
    return value


def task_overhead_ms(address: str) -> tuple[float, float]:
    """Milliseconds per no-op task: one at a time (round trip), and many via as_completed."""
    from distributed import Client, as_completed

    with Client(address, set_as_default=False) as client:
        client.submit(_no_op, -1, pure=False).result()  # the function is shipped once
        started = time.perf_counter()
        for i in range(NO_OP_ROUND_TRIPS):
            client.submit(_no_op, i, pure=False).result()
        round_trip = (time.perf_counter() - started) / NO_OP_ROUND_TRIPS
        started = time.perf_counter()
        futures = [client.submit(_no_op, i, pure=False) for i in range(NO_OP_BATCH)]
        for future in as_completed(futures, loop=client.loop, with_results=True):
            del future
        batched = (time.perf_counter() - started) / NO_OP_BATCH
    return round_trip * 1000, batched * 1000


def build_for(series: int) -> object:
    def build(quick: bool, command: str) -> Section:
        count = QUICK_SERIES if quick else series
        section = Section(f"Training throughput: {count} store-item series", command)
        runs: list[tuple[str, float, int]] = []
        for jobs in (1, 2):
            seconds, made = train_seconds(count, jobs=jobs)
            runs.append((f"local pool, --jobs {jobs}", seconds, made))
        overhead = (0.0, 0.0)
        for workers in (1, 2):
            with dask_cluster(workers) as address:
                seconds, made = train_seconds(count, scheduler=DaskScheduler(address))
                runs.append((f"Dask, {workers} worker{'s' * (workers > 1)}", seconds, made))
                if workers == 2:
                    overhead = task_overhead_ms(address)
        section.text(
            __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
            f"{count} of the {ALL_SERIES} series"
            + ("." if count >= ALL_SERIES else " (a subset: `make bench` trains them all)."),
        )
        serial = runs[0][1]
        header = ["mode", "series trained", "seconds", "series/s", "vs --jobs 1"]
        section.table(
            header,
            [
                [name, made, f"{seconds:.1f}", f"{count / seconds:.2f}", f"{serial / seconds:.2f}x"]
                for name, seconds, made in runs
            ],
        )
        section.table(
            ["scheduler overhead per no-op task (2 workers)", "ms"],
            [
                [f"one at a time, submit + result ({NO_OP_ROUND_TRIPS} round trips)",
                 f"{overhead[0]:.2f}"],
                [f"{NO_OP_BATCH} at once, as_completed", f"{overhead[1]:.3f}"],
            ],
        )  # fmt: skip
        section.charts["training"] = {name: count / seconds for name, seconds, _ in runs}
        return section

    return build


def main() -> int:
    # --series is read here and left out of run_script's parser.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--series", type=int, default=FULL_SERIES)
    known, rest = parser.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    return run_script("training_scaling.py", build_for(known.series))  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
