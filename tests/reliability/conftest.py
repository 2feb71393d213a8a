"""Fixtures of the reliability suite, and the count of generated API cases in the summary."""

from __future__ import annotations

import pytest

from tests.reliability.fuzz_counts import CLI_CASES, FUZZ_CASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FUZZ_CASES and not CLI_CASES:
        return
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
