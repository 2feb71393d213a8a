"""Training throughput on the store-item series: serial vs ``--jobs 2``.

The store-item file (500 series, 5 years of daily sales each) is ingested
once; each mode then trains the same series on its own copy of that store
through ``SalescastService.train_products`` (what ``salescast train --all
--jobs N`` calls): a holdout fit for the backtest and the final fit, per
series. The two modes run one after the other, serial first.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import workspace
from report import Section, run_script

# `make bench` trains all 500 (the 100-series run of the first session took 95 s for
# both modes, so about 8 min); `make bench-quick` 20; `--series N` any other count.
ALL_SERIES = 500
FULL_SERIES = ALL_SERIES
QUICK_SERIES = 20


def train_seconds(series: int, jobs: int) -> tuple[float, int]:
    """Seconds to train the first ``series`` products with ``jobs`` processes; versions made."""
    with tempfile.TemporaryDirectory(prefix="salescast-train-") as folder:
        database = Path(folder) / "store.db"
        shutil.copyfile(workspace.ensure_store_item_store(), database)
        service = workspace.service_with("computed", database, None)
        ids = sorted(service.list_product_ids())[:series]
        started = time.perf_counter()
        summaries = service.train_products(ids, jobs=jobs)
        seconds = time.perf_counter() - started
        service.close()
    return seconds, sum(summary.version is not None for summary in summaries)


def build_for(series: int) -> object:
    def build(quick: bool, command: str) -> Section:
        count = QUICK_SERIES if quick else series
        section = Section(f"Training throughput: {count} store-item series", command)
        serial, serial_made = train_seconds(count, jobs=1)
        parallel, parallel_made = train_seconds(count, jobs=2)
        section.text(
            __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
            f"{count} of the {ALL_SERIES} series"
            + ("." if count >= ALL_SERIES else " (a subset: `make bench` trains them all)."),
        )
        header = ["mode", "series trained", "seconds", "series/s", "speed-up"]
        section.table(
            header,
            [
                ["serial (--jobs 1)", serial_made, f"{serial:.1f}", f"{count / serial:.2f}",
                 "1.00x"],
                ["--jobs 2", parallel_made, f"{parallel:.1f}", f"{count / parallel:.2f}",
                 f"{serial / parallel:.2f}x"],
            ],
        )  # fmt: skip
        section.charts["training"] = {"serial": count / serial, "jobs 2": count / parallel}
        return section

    return build


def main() -> int:
    # --series is read here and left out of run_script's parser.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--series", type=int, default=FULL_SERIES)
    known, rest = parser.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    return run_script("training_speed.py", build_for(known.series))  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
