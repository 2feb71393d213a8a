"""The environment a test's `salescast serve` subprocess runs with."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ADMIN_TOKEN


def server_env(database: Path, **extra: str) -> dict[str, str]:
    """SQLite file `database`, the tests' admin token, no warm-up, small interval sampling."""
    return {
        "SALESCAST_DATABASE_URL": f"sqlite:///{database}",
        "SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN,
        "SALESCAST_WARMUP_ON_STARTUP": "false",
        "SALESCAST_UNCERTAINTY_SAMPLES": "100",
        "SALESCAST_TRAIN_JOBS": "1",
        **extra,
    }
