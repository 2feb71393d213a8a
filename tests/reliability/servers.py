"""The environment a test's `salescast serve` subprocess runs with."""

from __future__ import annotations

from tests.conftest import ADMIN_TOKEN


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Store `database_url`, the tests' admin token, no warm-up, small interval sampling."""
    return {
        "SALESCAST_DATABASE_URL": database_url,
        "SALESCAST_ADMIN_TOKEN": ADMIN_TOKEN,
        "SALESCAST_WARMUP_ON_STARTUP": "false",
        "SALESCAST_UNCERTAINTY_SAMPLES": "100",
        "SALESCAST_TRAIN_JOBS": "1",
        **extra,
    }
