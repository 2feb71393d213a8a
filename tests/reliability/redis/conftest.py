"""Redis fault, staleness, stampede and poisoning cases; each prints what it measured."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.redis.figures import REDIS_LINES
from tests.support.redis_server import RedisServer


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REDIS_LINES:
        terminalreporter.section("redis faults, staleness, stampede, poisoning")
        for line in REDIS_LINES:
            terminalreporter.write_line(line)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server this test may kill, freeze, snapshot and restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def store_copy(tmp_path: Path, trained_demo_db: Path) -> Path:
    path = tmp_path / "salescast.db"
    shutil.copy(trained_demo_db, path)
    return path
