"""Reliability suite: prints what it measured (case counts, crash outcomes) in the summary."""

from __future__ import annotations

import pytest

from tests.reliability.figures import CLI_CASES, CRASH_LINES, FUZZ_CASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FUZZ_CASES or CLI_CASES:
        terminalreporter.section("schemathesis")
    for label, count in sorted(FUZZ_CASES.items()):
        terminalreporter.write_line(f"{count:6d}  {label}")
    if FUZZ_CASES:
        total = sum(FUZZ_CASES.values())
        terminalreporter.write_line(
            f"schemathesis in process: {total} generated cases over {len(FUZZ_CASES)} operations"
        )
    for label, count in sorted(CLI_CASES.items()):
        terminalreporter.write_line(f"{label}: {count} generated cases")
    if CRASH_LINES:
        terminalreporter.section("crash safety")
        for line in CRASH_LINES:
            terminalreporter.write_line(line)
