"""What one benchmark script hands back: a titled Markdown section plus chart data.

Each script is runnable on its own (``.venv/bin/python bench/NAME.py
[--quick] [--json FILE]``): it prints its section and, with ``--json``,
writes it for ``results.py``, which assembles ``RESULTS.md`` and the charts.
Every table row carries the command that produced it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Section:
    """One benchmark's part of RESULTS.md."""

    title: str
    command: str
    lines: list[str] = field(default_factory=list)
    charts: dict[str, Any] = field(default_factory=dict)
    # (target, measured, verdict) rows, gathered by results.py into one summary table.
    targets: list[list[str]] = field(default_factory=list)

    def target(self, what: str, measured: str, met: bool | None) -> list[str]:
        """Record one target's outcome (``None``: the measurement cannot tell); returns
        the row for the section's own table."""
        verdict = "undecided" if met is None else "met" if met else "**missed**"
        row = [what, measured, verdict]
        self.targets.append(row)
        return row

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """A Markdown table whose last column names the command of every row."""
        columns = [*header, "command"]
        self.lines.append("| " + " | ".join(columns) + " |")
        self.lines.append("|" + "|".join(["---"] + ["---:"] * (len(columns) - 2) + ["---"]) + "|")
        for row in rows:
            cells = [str(cell) for cell in row] + [f"`{self.command}`"]
            self.lines.append("| " + " | ".join(cells) + " |")
        self.lines.append("")

    def text(self, *paragraphs: str) -> None:
        for paragraph in paragraphs:
            self.lines += [paragraph, ""]

    def markdown(self) -> list[str]:
        return [f"## {self.title}", "", *self.lines]


def command_for(script: str, quick: bool, *extra: str) -> str:
    """The shell command that reproduces a script's section."""
    parts = [".venv/bin/python", f"bench/{script}", *extra]
    if quick:
        parts.append("--quick")
    return " ".join(parts)


def run_script(script: str, build: Callable[[bool, str], Section]) -> int:
    """Parse ``--quick``/``--json``, build the section, print it, write the JSON."""
    parser = argparse.ArgumentParser(description=f"bench/{script}")
    parser.add_argument("--quick", action="store_true", help="fewer blocks, smaller inputs")
    parser.add_argument("--json", type=Path, help="also write the section here")
    args = parser.parse_args()
    section = build(args.quick, command_for(script, args.quick))
    print("\n".join(section.markdown()))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(section)))
    return 0


def load_section(path: Path) -> Section:
    raw = json.loads(path.read_text())
    return Section(**raw)


if __name__ == "__main__":
    sys.exit("import this module; run the bench/*.py scripts instead")
