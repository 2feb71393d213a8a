"""Database URLs: PostgreSQL runs on psycopg 3, anything else is refused with the reason."""

from __future__ import annotations

import pytest

from salescast.config import SettingsError, load_settings
from salescast.store.urls import DatabaseUrlError, normalize_database_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://u:pw@db.example:5433/sales",
            "postgresql+psycopg://u:pw@db.example:5433/sales",
        ),
        ("postgres://u@db.example/sales", "postgresql+psycopg://u@db.example/sales"),
        ("postgresql+psycopg://db.example/sales", "postgresql+psycopg://db.example/sales"),
        ("sqlite:///./salescast.db", "sqlite+pysqlite:///./salescast.db"),
    ],
)
def test_a_url_runs_on_the_installed_driver(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+psycopg2://db.example/sales", "driver 'psycopg2' .* is not installed"),
        ("mysql://db.example/sales", "unsupported database 'mysql'"),
        ("postgresql://db.example", "no database name"),
        ("salescast.db", "not a database URL"),
    ],
)
def test_a_url_salescast_cannot_store_in_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(DatabaseUrlError, match=reason):
        normalize_database_url(url)


def test_a_bad_database_url_fails_at_start_up_naming_the_variable_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESCAST_DATABASE_URL", "mysql://admin:hunter2@db.example/sales")

    with pytest.raises(SettingsError) as failure:
        load_settings(_env_file=None)

    assert "SALESCAST_DATABASE_URL" in str(failure.value)
    assert "unsupported database 'mysql'" in str(failure.value)
    assert "hunter2" not in str(failure.value)
    assert "admin:***@db.example" in str(failure.value)
