"""Training throughput on the store-item series: the numpy fit next to CmdStan's.

The store-item file (500 series, 5 years of daily sales each) is ingested
once; each fit backend then trains the same series on its own copy of that
store through ``SalescastService.train_products`` (what ``salescast train
--all --jobs N`` calls): a holdout fit for the backtest and the final fit, per
series. Serially the backends take turns in blocks of series (rotated order),
so the machine's drift falls on both; a ``--jobs 2`` run of the last
backend (numpy) follows. A breakdown times each step of one series' training
on a sample of the series, and the accuracy check scores both backends'
backtests on the 70 M5 store x department series.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import workspace
from interleave import fmt_seconds
from report import Section, run_script

from salescast.forecasting.backtest import score_holdout, split_holdout
from salescast.forecasting.batch import build_version
from salescast.forecasting.model_codec import encode_model
from salescast.forecasting.training import (
    TrainingParams,
    _point_forecast,
    fit_prophet,
)
from salescast.service import SalescastService

# `make bench` trains all 500 per backend (CmdStan alone took 333 s serial and 168 s
# with --jobs 2 on a loaded machine, numpy about a third of that); `make bench-quick`
# 20; `--series N` any other count.
ALL_SERIES = 500
FULL_SERIES = ALL_SERIES
QUICK_SERIES = 20
BLOCK_SERIES = 25  # series per serial block: each backend trains a block, in turn
BREAKDOWN_SERIES = 10
M5_SERIES = 70
QUICK_M5_SERIES = 10
BACKENDS = ("cmdstan", "numpy")
TARGET_RATIO = 2.5  # issue #15 point 6: >= 2.5x today's series/s
MASE_TOLERANCE = 0.01  # issue #15 point 6: mean backtest MASE no more than 0.01 worse


@contextmanager
def services(backends: Sequence[str]) -> Iterator[dict[str, SalescastService]]:
    """A service per backend, each over its own copy of the store-item store."""
    with tempfile.TemporaryDirectory(prefix="salescast-train-") as folder:
        made = {}
        for backend in backends:
            database = Path(folder) / f"{backend}.db"
            shutil.copyfile(workspace.ensure_store_item_store(), database)
            settings = workspace.settings_for(database, fit_backend=backend)
            made[backend] = SalescastService(
                settings, cache=workspace.cache_variant("computed", None, prefix="bench")
            )
        try:
            yield made
        finally:
            for service in made.values():
                service.close()


def serial_seconds(series: int, backends: Sequence[str]) -> dict[str, float]:
    """Seconds each backend took to train the first ``series`` products, serially, in
    interleaved blocks."""
    seconds = dict.fromkeys(backends, 0.0)
    with services(backends) as by_backend:
        ids = sorted(next(iter(by_backend.values())).list_product_ids())[:series]
        blocks = [ids[i : i + BLOCK_SERIES] for i in range(0, len(ids), BLOCK_SERIES)]
        for index, block in enumerate(blocks):
            shift = index % len(backends)
            for backend in [*backends[shift:], *backends[:shift]]:
                started = time.perf_counter()
                summaries = by_backend[backend].train_products(block, force=True)
                seconds[backend] += time.perf_counter() - started
                failed = [s.product_id for s in summaries if s.version is None]
                if failed:
                    raise RuntimeError(f"{backend}: training failed for {failed}")
    return seconds


def parallel_seconds(series: int, backend: str, jobs: int) -> float:
    with services([backend]) as by_backend:
        service = by_backend[backend]
        ids = sorted(service.list_product_ids())[:series]
        started = time.perf_counter()
        service.train_products(ids, jobs=jobs, force=True)
        return time.perf_counter() - started


STEPS = ("data load", "holdout fit", "backtest predict", "full fit", "serialise", "store write")


def step_seconds(service: SalescastService, product_id: str) -> dict[str, float]:
    """One product trained as ``build_version`` and the service do it, each step timed.

    The steps are those of ``train_model`` (forecasting/training.py) spelt out; the
    version written at the end is ``build_version``'s, so the store write is the real one.
    """
    params = service.training_params
    clock = time.perf_counter
    times = {}
    started = clock()
    task = service.training._training_task(product_id)
    times["data load"] = clock() - started
    days, quantities = task.days, task.quantities
    cut = split_holdout(days, params.holdout_days)
    started = clock()
    backtest_model = fit_prophet(days[:cut], quantities[:cut], params, uncertainty_samples=0)
    times["holdout fit"] = clock() - started
    started = clock()
    predicted = _point_forecast(backtest_model, days[cut:])
    score_holdout(
        dict(zip(days[:cut], quantities[:cut], strict=True)),
        dict(zip(days[cut:], quantities[cut:], strict=True)),
        predicted,
    )
    times["backtest predict"] = clock() - started
    started = clock()
    model = fit_prophet(days, quantities, params)
    times["full fit"] = clock() - started
    started = clock()
    encode_model(model)
    times["serialise"] = clock() - started
    version = build_version(task, params)  # untimed: the same fits again, for a real blob
    started = clock()
    service.training._store_version(product_id, version)
    times["store write"] = clock() - started
    return times


def breakdown(backends: Sequence[str], series: int) -> dict[str, dict[str, float]]:
    """Median seconds per step and backend over ``series`` series, backends alternating."""
    samples: dict[str, dict[str, list[float]]] = {b: {step: [] for step in STEPS} for b in backends}
    with services(backends) as by_backend:
        ids = sorted(next(iter(by_backend.values())).list_product_ids())[:series]
        for index, product_id in enumerate(ids):
            shift = index % len(backends)
            for backend in [*backends[shift:], *backends[:shift]]:
                for step, seconds in step_seconds(by_backend[backend], product_id).items():
                    samples[backend][step].append(seconds)
    return {
        b: {step: statistics.median(values) for step, values in steps.items()}
        for b, steps in samples.items()
    }


def m5_backtest_mase(series: int, backend: str) -> list[float]:
    """Each M5 series' backtest MASE as training stores it, fitted by ``backend``."""
    import pandas as pd

    table = pd.read_csv(workspace.M5_CSV, parse_dates=["date"])
    params = TrainingParams(fit_backend=backend, uncertainty_samples=0)  # type: ignore[arg-type]
    scores = []
    groups = sorted(table.groupby(["store_id", "dept_id"]), key=lambda item: item[0])
    for _, rows in groups[:series]:
        rows = rows.sort_values("date")
        days: list[dt.date] = [d.date() for d in rows["date"]]
        quantities = [float(q) for q in rows["sales"]]
        cut = split_holdout(days, params.holdout_days)
        model = fit_prophet(days[:cut], quantities[:cut], params, uncertainty_samples=0)
        metrics = score_holdout(
            dict(zip(days[:cut], quantities[:cut], strict=True)),
            dict(zip(days[cut:], quantities[cut:], strict=True)),
            _point_forecast(model, days[cut:]),
        )
        if metrics.mase is not None:
            scores.append(metrics.mase)
    return scores


def build_for(series: int, backends: Sequence[str]) -> Callable[[bool, str], Section]:
    def build(quick: bool, command: str) -> Section:
        count = QUICK_SERIES if quick else series
        section = Section(f"Training throughput: {count} store-item series", command)
        section.text(
            __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
            f"{count} of the {ALL_SERIES} series"
            + ("." if count >= ALL_SERIES else " (a subset: `make bench` trains them all)."),
        )
        serial = serial_seconds(count, backends)
        # --jobs 2 for the default backend only: CmdStan's was measured before (#15),
        # and it would add a third of the run.
        parallel = {b: parallel_seconds(count, b, jobs=2) for b in backends[-1:]}
        base = serial[backends[0]]
        runs = [(f"{b}, serial", serial[b]) for b in backends]
        runs += [(f"{b}, --jobs 2", seconds) for b, seconds in parallel.items()]
        section.table(
            ["fit backend, mode", "series/s", "s per series", f"vs {backends[0]}, serial"],
            [
                [name, f"{count / seconds:.2f}", f"{seconds / count:.3f}", f"{base / seconds:.2f}x"]
                for name, seconds in runs
            ],
        )
        section.charts["training"] = {name: count / seconds for name, seconds in runs}
        if set(BACKENDS) <= set(backends):
            ratio = serial["cmdstan"] / serial["numpy"]
            section.table(
                ["target", "measured", "verdict"],
                [
                    section.target(
                        f"numpy fit >= {TARGET_RATIO}x CmdStan's series/s, serial, {count} series",
                        f"{ratio:.2f}x",
                        ratio >= TARGET_RATIO,
                    )
                ],
            )
        sample = min(BREAKDOWN_SERIES, count)
        steps = breakdown(backends, sample)
        section.text(
            f"Where one series' training goes (median over {sample} series, "
            "backends alternating series by series):"
        )
        section.table(
            ["step", *backends],
            [[step, *(fmt_seconds(steps[b][step]) for b in backends)] for step in STEPS]
            + [["total", *(fmt_seconds(sum(steps[b].values())) for b in backends)]],
        )
        m5_count = QUICK_M5_SERIES if quick else M5_SERIES
        mase = {b: m5_backtest_mase(m5_count, b) for b in backends}
        section.text(
            f"Accuracy: mean backtest MASE (28-day holdout) over {m5_count} M5 series "
            "(lower is better):"
        )
        section.table(
            ["fit backend", "series scored", "mean MASE"],
            [[b, len(mase[b]), f"{statistics.mean(mase[b]):.4f}"] for b in backends],
        )
        if set(BACKENDS) <= set(backends):
            worse = statistics.mean(mase["numpy"]) - statistics.mean(mase["cmdstan"])
            section.table(
                ["target", "measured", "verdict"],
                [
                    section.target(
                        f"numpy mean backtest MASE at most {MASE_TOLERANCE} above CmdStan's "
                        f"({m5_count} M5 series)",
                        f"{worse:+.4f}",
                        worse <= MASE_TOLERANCE,
                    )
                ],
            )
        return section

    return build


def main() -> int:
    # --series and --fit-backend are read here and left out of run_script's parser.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--series", type=int, default=FULL_SERIES)
    parser.add_argument(
        "--fit-backend",
        choices=[*BACKENDS, "both"],
        default="both",
        help="both (default): CmdStan and numpy side by side; or only one of them",
    )
    known, rest = parser.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    backends = BACKENDS if known.fit_backend == "both" else (known.fit_backend,)
    return run_script("training_speed.py", build_for(known.series, backends))


if __name__ == "__main__":
    sys.exit(main())
