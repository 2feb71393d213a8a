"""Figures the reliability tests measured in this run, printed at the end by conftest.py.

docs/reliability.md quotes them; they come from here, never from memory.
"""

from __future__ import annotations

import collections

# Cases the in-process schemathesis tests sent, per API operation.
FUZZ_CASES: collections.Counter[str] = collections.Counter()
# Cases `schemathesis run` generated against a live server, per run label.
CLI_CASES: collections.Counter[str] = collections.Counter()
# One line per crash test: what was killed when, and what the store held after.
CRASH_LINES: list[str] = []
