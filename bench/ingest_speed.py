"""Ingest speed on the two real files: parse + validate + store, into a fresh SQLite file.

Run: `.venv/bin/python bench/ingest_speed.py` (or `make bench`). Prints one
Markdown table row per file; nothing here is asserted by the tests.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from salescast.config import Settings
from salescast.service import SalescastService
from salescast.store.ingest import ColumnSpec, parse_csv

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COMMAND = "`.venv/bin/python bench/ingest_speed.py`"
FILES = [
    (
        "M5 store x dept",
        DATA / "m5_store_dept_daily" / "m5_store_dept_daily.csv",
        ColumnSpec(date="date", product=("store_id", "dept_id"), quantity="sales"),
    ),
    (
        "store-item demand",
        DATA / "store_item_demand" / "train.csv",
        ColumnSpec(date="date", product=("store", "item"), quantity="sales"),
    ),
]


def measure(path: Path, columns: ColumnSpec) -> tuple[int, float, float]:
    body = path.read_bytes()
    started = time.perf_counter()
    parsed = parse_csv(body, columns)
    parse_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(_env_file=None, database_url=f"sqlite:///{folder}/bench.db")  # type: ignore[call-arg]
        service = SalescastService(settings)
        started = time.perf_counter()
        service.ingest_csv(body, columns=columns)
        total_seconds = time.perf_counter() - started
        service.close()
    return len(parsed.rows), parse_seconds, total_seconds


def table() -> list[str]:
    lines = [
        "| file | rows | parse + validate (s) | parse + validate + store (s) | rows/s | command |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, path, columns in FILES:
        if not path.exists():
            lines.append(f"| {name} | missing: {path} | | | | {COMMAND} |")
            continue
        rows, parse_s, total_s = measure(path, columns)
        lines.append(
            f"| {name} | {rows:,} | {parse_s:.2f} | {total_s:.2f} | {rows / total_s:,.0f} "
            f"| {COMMAND} |"
        )
    return lines


def main() -> int:
    for line in table():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
