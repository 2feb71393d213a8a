"""Writes bench/RESULTS.md: the date, commit and machine, then each benchmark's table."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest_speed  # a sibling script, importable once bench/ is on the path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def header() -> list[str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        "# Benchmark results",
        "",
        f"- date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"- commit: {commit or 'unknown'}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "",
        "Absolute times drift between runs on a shared machine; read them as context.",
        "",
    ]


def main() -> int:
    lines = header()
    lines += ["## Ingest (`.venv/bin/python bench/ingest_speed.py`)", "", *ingest_speed.table(), ""]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
