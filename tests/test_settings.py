"""Settings: defaults as documented, bad values named by their environment variable."""

from __future__ import annotations

import re

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
    # Idle lifetimes since decision 0011 (INTERFACE.md still gives the fixed
    # TTLs of before, 21600 and 3600): a day, within a week's maximum.
    assert settings.cache_ttl_model_seconds == 86_400
    assert settings.cache_ttl_prediction_seconds == 86_400
    assert settings.cache_ttl_data_seconds == 86_400
    assert settings.cache_max_lifetime_seconds == 7 * 86_400
    assert settings.cache_stale_seconds == 3_600
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.fit_backend == "numpy"
    assert (settings.backtest_windows, settings.calibrate_intervals) == (4, True)
    assert settings.select_candidates is True


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
        ("SALESCAST_DASK_SCHEDULER", "127.0.0.1:8786"),
        ("SALESCAST_DASK_SCHEDULER", "tls://127.0.0.1:8786"),
        ("SALESCAST_DASK_SCHEDULER", "tcp://127.0.0.1"),
        ("SALESCAST_DASK_SCHEDULER", "tcp://a:1,b:2"),
        ("SALESCAST_DASK_CONNECT_TIMEOUT_SECONDS", "0"),
        ("SALESCAST_FIT_BACKEND", "stan"),
        ("SALESCAST_BACKTEST_WINDOWS", "0"),
        ("SALESCAST_BACKTEST_WINDOWS", "three"),
        ("SALESCAST_CALIBRATE_INTERVALS", "maybe"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_the_dask_scheduler_is_off_by_default_and_read_as_tcp_host_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().dask_scheduler is None
    monkeypatch.setenv("SALESCAST_DASK_SCHEDULER", " tcp://10.0.0.5:8786 ")
    assert load_settings().dask_scheduler == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("SALESCAST_DASK_SCHEDULER", "")
    assert load_settings().dask_scheduler is None


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


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            {"holdout_days": 50},
            "SALESCAST_MIN_HISTORY_DAYS (60) must be at least SALESCAST_HOLDOUT_DAYS + 14",
        ),
        (
            {"holdout_weeks": 20},
            "SALESCAST_MIN_HISTORY_WEEKS (66) must be at least SALESCAST_HOLDOUT_WEEKS + 53",
        ),
        (
            {"min_history_months": 18},
            "SALESCAST_MIN_HISTORY_MONTHS (18) must be at least SALESCAST_HOLDOUT_MONTHS + 13",
        ),
    ],
)
def test_a_holdout_that_leaves_too_little_training_is_refused_naming_the_variables(
    overrides: dict[str, int], named: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        load_settings(_env_file=None, **overrides)


def test_a_job_timeout_shorter_than_its_heartbeat_is_refused_naming_both_variables() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, job_heartbeat_seconds=10, job_stale_after_seconds=5)

    message = str(refused.value)
    assert "SALESCAST_JOB_STALE_AFTER_SECONDS must be longer than" in message
    assert "SALESCAST_JOB_HEARTBEAT_SECONDS" in message


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"SALESCAST_REDIS_CLUSTER_NODES": "127.0.0.1:7000,nohost"}, "'nohost' is not host:port"),
        ({"SALESCAST_REDIS_SENTINELS": "127.0.0.1:99999"}, "SALESCAST_REDIS_SENTINELS"),
        ({"SALESCAST_REDIS_SENTINELS": "127.0.0.1:27101"}, "SALESCAST_REDIS_SENTINEL_MASTER"),
        (
            {
                "SALESCAST_REDIS_SENTINELS": "127.0.0.1:27101",
                "SALESCAST_REDIS_SENTINEL_MASTER": "m",
                "SALESCAST_REDIS_CLUSTER_NODES": "127.0.0.1:7000",
            },
            "choose one topology",
        ),
        ({"SALESCAST_REDIS_SSL_CA_CERTS": "/no/such/ca.pem"}, "SALESCAST_REDIS_SSL_CA_CERTS"),
        (
            {
                "SALESCAST_REDIS_URL": "redis://127.0.0.1:6390/0",
                "SALESCAST_REDIS_SSL_CA_CERTS": "ca",
            },
            "is not rediss://",
        ),
        (
            {"SALESCAST_REDIS_URL": "rediss://x:1/0", "SALESCAST_REDIS_SSL_CERTFILE": "ca"},
            "KEYFILE",
        ),
        ({"SALESCAST_REDIS_SSL_CA_CERTS": "ca"}, "no Redis is"),
        ({"SALESCAST_REDIS_HOST": "r1", "SALESCAST_REDIS_SSL_CA_CERTS": "ca"}, "REDIS_HOST makes"),
        ({"SALESCAST_REDIS_SENTINEL_PASSWORD": "p"}, "SALESCAST_REDIS_SENTINELS is not"),
    ],
)
def test_topology_and_tls_settings_that_cannot_work_fail_at_start_up_naming_them(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str
) -> None:
    open("ca", "w").close()  # an existing file, in the test's own folder
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=re.escape(named)):
        load_settings()


def test_each_topology_setting_selects_its_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from salescast.cache.backends.redis_cluster import RedisClusterBackend
    from salescast.cache.backends.redis_sentinel import RedisSentinelBackend
    from salescast.cache_factory import build_l2

    assert build_l2(load_settings()) is None
    monkeypatch.setenv("SALESCAST_REDIS_SENTINELS", "127.0.0.1:27101, 127.0.0.1:27102")
    monkeypatch.setenv("SALESCAST_REDIS_SENTINEL_MASTER", "shop")
    monkeypatch.setenv("SALESCAST_REDIS_SENTINEL_PASSWORD", "s3cret")
    sentinel = build_l2(load_settings())
    assert isinstance(sentinel, RedisSentinelBackend)
    assert (sentinel.sentinels, sentinel.master_name) == (
        [("127.0.0.1", 27101), ("127.0.0.1", 27102)],
        "shop",
    )
    sentinel.close()
    monkeypatch.delenv("SALESCAST_REDIS_SENTINELS")
    monkeypatch.delenv("SALESCAST_REDIS_SENTINEL_MASTER")
    monkeypatch.delenv("SALESCAST_REDIS_SENTINEL_PASSWORD")
    # Nothing connects at start-up: a cluster that is down costs misses, not the start.
    monkeypatch.setenv("SALESCAST_REDIS_CLUSTER_NODES", "127.0.0.1:1,127.0.0.1:2")
    cluster = build_l2(load_settings())
    assert isinstance(cluster, RedisClusterBackend)
    assert cluster.startup_nodes == [("127.0.0.1", 1), ("127.0.0.1", 2)]
    cluster.close()
