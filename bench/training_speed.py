"""Training throughput on the store-item series: the numpy fit next to CmdStan's, and the
default rolling-origin training next to the single-holdout one.

The store-item file (500 series, 5 years of daily sales each) is ingested
once; each variant then trains the same series on its own copy of that
store through ``SalescastService.train_products`` (what ``salescast train
--all --jobs N`` calls). A variant is a fit backend, a number of backtest
windows and whether candidates are selected: with 1 window and none, a series
costs a holdout fit and the final fit (the training #15 measured, CmdStan's
being "today's path"); the default (since #16) makes four backtest fits, each
forecast with its simulated futures for the coverage and the interval
calibration and scored for every candidate correction of its points, then the
final fit and its correction. Serially the
variants take turns in blocks of series (rotated order), so the machine's
drift falls on all; a ``--jobs 2`` run of the last variant (the default)
follows. A breakdown times each step of one series' training on a sample of
the series, and the accuracy check scores both backends' last-window
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
from typing import TYPE_CHECKING

import workspace
from interleave import fmt_seconds
from report import Section, run_script

from salescast.forecasting.adjustment import PROPHET, adjustment_or_unscaled, candidates, choose
from salescast.forecasting.backtest import score_holdout, split_holdout, window_cuts
from salescast.forecasting.batch import build_version
from salescast.forecasting.model_codec import encode_model
from salescast.forecasting.training import (
    TrainingParams,
    _backtest_window,
    _fit_output,
    fit_prophet,
)
from salescast.service import SalescastService

if TYPE_CHECKING:
    from prophet import Prophet

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
# name -> (fit backend, backtest windows, select candidates); the first is what the
# ratios compare with
VARIANTS: dict[str, tuple[str, int, bool]] = {
    "cmdstan, 1 window": ("cmdstan", 1, False),
    "numpy, 1 window": ("numpy", 1, False),
    "numpy, 4 windows, candidates (default)": ("numpy", 4, True),
}
TARGET_RATIO = 2.5  # issue #15 point 6: >= 2.5x today's series/s
MASE_TOLERANCE = 0.01  # issue #15 point 6: mean backtest MASE no more than 0.01 worse


@contextmanager
def services(variants: Sequence[str]) -> Iterator[dict[str, SalescastService]]:
    """A service per variant, each over its own copy of the store-item store."""
    with tempfile.TemporaryDirectory(prefix="salescast-train-") as folder:
        made = {}
        for index, variant in enumerate(variants):
            backend, windows, select = VARIANTS[variant]
            database = Path(folder) / f"variant-{index}.db"
            shutil.copyfile(workspace.ensure_store_item_store(), database)
            settings = workspace.settings_for(
                database, fit_backend=backend, backtest_windows=windows, select_candidates=select
            )
            made[variant] = SalescastService(
                settings, cache=workspace.cache_variant("computed", None, prefix="bench")
            )
        try:
            yield made
        finally:
            for service in made.values():
                service.close()


def serial_seconds(series: int, variants: Sequence[str]) -> dict[str, float]:
    """Seconds each variant took to train the first ``series`` products, serially, in
    interleaved blocks."""
    seconds = dict.fromkeys(variants, 0.0)
    with services(variants) as by_variant:
        ids = sorted(next(iter(by_variant.values())).list_product_ids())[:series]
        blocks = [ids[i : i + BLOCK_SERIES] for i in range(0, len(ids), BLOCK_SERIES)]
        for index, block in enumerate(blocks):
            shift = index % len(variants)
            for variant in [*variants[shift:], *variants[:shift]]:
                started = time.perf_counter()
                summaries = by_variant[variant].train_products(block, force=True)
                seconds[variant] += time.perf_counter() - started
                failed = [s.product_id for s in summaries if s.version is None]
                if failed:
                    raise RuntimeError(f"{variant}: training failed for {failed}")
    return seconds


def parallel_seconds(series: int, variant: str, jobs: int) -> float:
    with services([variant]) as by_variant:
        service = by_variant[variant]
        ids = sorted(service.list_product_ids())[:series]
        started = time.perf_counter()
        service.train_products(ids, jobs=jobs, force=True)
        return time.perf_counter() - started


STEPS = (
    "data load",
    "backtest (every window)",
    "full fit",
    "candidates (scores, correction)",
    "serialise",
    "store write",
)


def step_seconds(service: SalescastService, product_id: str) -> dict[str, float]:
    """One product trained as ``build_version`` and the service do it, each step timed.

    The steps are those of ``train_model`` (forecasting/training.py) spelt out (the
    backtest: each window's fit and its forecast with simulated futures; the
    candidates: each window's scores of every candidate, and the final fit's
    correction); the version written at the end is ``build_version``'s, so the store
    write is the real one.
    """
    params = service.training_params
    clock = time.perf_counter
    times = {}
    started = clock()
    task = service.training._training_task(product_id)
    times["data load"] = clock() - started
    days, quantities = task.days, task.quantities
    started = clock()
    minimum = params.min_history_days - params.holdout_days
    windows = [
        _backtest_window(product_id, days[:end], quantities[:end], start, params, "D")
        for start, end in window_cuts(days, params.holdout_days, params.backtest_windows, minimum)
    ]
    times["backtest (every window)"] = clock() - started
    started = clock()
    model = fit_prophet(days, quantities, params)
    times["full fit"] = clock() - started
    started = clock()
    if params.select_candidates:
        order, chosen = candidates("D", params.seasonality_mode), PROPHET
        for window in windows:
            window.served(chosen).predicted  # noqa: B018 (the served points, as training scores them)
            chosen = choose(window.errors(order), order)
        adjustment_or_unscaled(chosen, _fit_output(model, days, quantities, len(days))[0])
    times["candidates (scores, correction)"] = clock() - started
    started = clock()
    encode_model(model)
    times["serialise"] = clock() - started
    version = build_version(task, params)  # untimed: the same fits again, for a real blob
    started = clock()
    service.training._store_version(product_id, version)
    times["store write"] = clock() - started
    return times


def breakdown(variants: Sequence[str], series: int) -> dict[str, dict[str, float]]:
    """Median seconds per step and variant over ``series`` series, variants alternating."""
    samples: dict[str, dict[str, list[float]]] = {v: {step: [] for step in STEPS} for v in variants}
    with services(variants) as by_variant:
        ids = sorted(next(iter(by_variant.values())).list_product_ids())[:series]
        for index, product_id in enumerate(ids):
            shift = index % len(variants)
            for variant in [*variants[shift:], *variants[:shift]]:
                for step, seconds in step_seconds(by_variant[variant], product_id).items():
                    samples[variant][step].append(seconds)
    return {
        v: {step: statistics.median(values) for step, values in steps.items()}
        for v, steps in samples.items()
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


def _point_forecast(model: Prophet, days: list[dt.date]) -> dict[dt.date, float]:
    import pandas as pd

    frame = model.predict(pd.DataFrame({"ds": pd.to_datetime(days)}))
    return {d: float(v) for d, v in zip(days, frame["yhat"], strict=True)}


def build_for(series: int, variants: Sequence[str]) -> Callable[[bool, str], Section]:
    def build(quick: bool, command: str) -> Section:
        count = QUICK_SERIES if quick else series
        section = Section(f"Training throughput: {count} store-item series", command)
        section.text(
            __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
            f"{count} of the {ALL_SERIES} series"
            + ("." if count >= ALL_SERIES else " (a subset: `make bench` trains them all)."),
        )
        serial = serial_seconds(count, variants)
        # --jobs 2 for the default only: CmdStan's was measured before (#15), and it
        # would add a third of the run.
        parallel = {v: parallel_seconds(count, v, jobs=2) for v in variants[-1:]}
        base = serial[variants[0]]
        runs = [(f"{v}, serial", serial[v]) for v in variants]
        runs += [(f"{v}, --jobs 2", seconds) for v, seconds in parallel.items()]
        section.table(
            ["variant, mode", "series/s", "s per series", f"vs {variants[0]}, serial"],
            [
                [name, f"{count / seconds:.2f}", f"{seconds / count:.3f}", f"{base / seconds:.2f}x"]
                for name, seconds in runs
            ],
        )
        section.charts["training"] = {name: count / seconds for name, seconds in runs}
        today = "cmdstan, 1 window"
        if today in variants:
            rows = []
            for variant in variants:
                if variant == today:
                    continue
                ratio = serial[today] / serial[variant]
                rows.append(
                    section.target(
                        f"{variant} >= {TARGET_RATIO}x the series/s of {today} (today's "
                        f"path, #15), serial, {count} series",
                        f"{ratio:.2f}x",
                        ratio >= TARGET_RATIO,
                    )
                )
            section.table(["target", "measured", "verdict"], rows)
        sample = min(BREAKDOWN_SERIES, count)
        steps = breakdown(variants, sample)
        section.text(
            f"Where one series' training goes (median over {sample} series, "
            "variants alternating series by series):"
        )
        section.table(
            ["step", *variants],
            [[step, *(fmt_seconds(steps[v][step]) for v in variants)] for step in STEPS]
            + [["total", *(fmt_seconds(sum(steps[v].values())) for v in variants)]],
        )
        backends = [b for b in BACKENDS if any(VARIANTS[v][0] == b for v in variants)]
        m5_count = QUICK_M5_SERIES if quick else M5_SERIES
        mase = {b: m5_backtest_mase(m5_count, b) for b in backends}
        section.text(
            f"Accuracy: mean backtest MASE (the last 28-day window) over {m5_count} M5 series "
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
        help="both (default): every variant side by side; or only one backend's variants",
    )
    known, rest = parser.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    variants = [
        name for name, (backend, *_) in VARIANTS.items() if known.fit_backend in ("both", backend)
    ]
    return run_script("training_speed.py", build_for(known.series, variants))


if __name__ == "__main__":
    sys.exit(main())
