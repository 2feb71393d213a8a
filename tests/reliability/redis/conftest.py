"""Redis fault, staleness, stampede and poisoning cases; each prints what it measured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.redis.figures import REDIS_LINES
from tests.support.redis_server import RedisServer


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REDIS_LINES:
        terminalreporter.section("redis faults, staleness, stampede, poisoning")
        for line in REDIS_LINES:
            terminalreporter.write_line(line)


@pytest.fixture
def store_kind() -> str:
    """These cases are about the shared tier under Redis faults, and run on SQLite only.

    What they check (no stale forecast, one computation per key, poisoned values
    refused, a frozen Redis costing one timeout) happens in the cache, above the
    store; the store only supplies the version read, which the same tests in
    tests/service and tests/api run on both stores, and which
    tests/store/test_restart.py faults on PostgreSQL. Running them twice cost
    about 90 s of suite time for no new path.
    """
    return "sqlite"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server this test may kill, freeze, snapshot and restart."""
    with RedisServer() as server:
        yield server
