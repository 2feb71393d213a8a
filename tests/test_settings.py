"""Settings: defaults as documented, bad values named by their environment variable."""

from __future__ import annotations

import pytest

from salescast.config import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SALESCAST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_the_embedded_ones_from_the_interface() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///./salescast.db"
    assert settings.redis_url is None
    assert not settings.redis_configured
    assert settings.redis_max_connections == 50
    assert settings.cache_ttl_model_seconds == 21_600
    assert settings.cache_ttl_prediction_seconds == 3_600
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SALESCAST_REDIS_PORT", "six"),
        ("SALESCAST_REDIS_MAX_CONNECTIONS", "0"),
        ("SALESCAST_CACHE_TTL_MODEL_SECONDS", "-1"),
        ("SALESCAST_HOLIDAYS_COUNTRY", "XX"),
        ("SALESCAST_WARMUP_ON_STARTUP", "maybe"),
        ("SALESCAST_INTERVAL_WIDTH", "1.5"),
        ("SALESCAST_SEASONALITY_MODE", "cubic"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_holiday_country_is_upper_cased_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESCAST_HOLIDAYS_COUNTRY", "br")
    assert load_settings().holidays_country == "BR"


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESCAST_REDIS_URL", "redis://:hunter2@127.0.0.1:6390/0")
    monkeypatch.setenv("SALESCAST_ADMIN_TOKEN", "topsecret")
    text = repr(load_settings())
    assert "hunter2" not in text
    assert "topsecret" not in text


def test_settings_read_a_dot_env_file(tmp_path: pytest.TempPathFactory) -> None:
    import pathlib

    pathlib.Path(".env").write_text("SALESCAST_PORT=8123\n")
    assert Settings().port == 8123


def test_a_job_timeout_shorter_than_its_heartbeat_is_refused_naming_both_variables() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, job_heartbeat_seconds=10, job_stale_after_seconds=5)

    message = str(refused.value)
    assert "SALESCAST_JOB_STALE_AFTER_SECONDS must be longer than" in message
    assert "SALESCAST_JOB_HEARTBEAT_SECONDS" in message
