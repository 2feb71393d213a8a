"""The one Settings object, read from SALESCAST_* environment variables and `.env`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The password of a URL (scheme://user:PASSWORD@host): never repeated in a message.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


TRAINING_PERIODS_BEYOND_HOLDOUT: dict[Literal["day", "week", "month"], int] = {
    "day": 14,
    "week": 53,
    "month": 13,
}
"""Periods the fit without the holdout needs beyond it, per unit: two full weeks of
days for the weekly seasonality; a season and one more period of weeks or months,
so that the seasonal-naive scale of MASE has a pair to average. Here rather than
in salescast.forecasting so that settings are checked without importing it."""


class SettingsError(Exception):
    """Raised when a setting has a bad value; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of salescast. Built once by the entry point and passed down.

    Nothing reads settings at import time: `create_app(settings)` and the CLI
    build their own, so tests can run apps with different settings side by side.
    """

    model_config = SettingsConfigDict(
        env_prefix="SALESCAST_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- store
    database_url: str = "sqlite:///./salescast.db"

    # --- HTTP server
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    admin_token: SecretStr | None = None
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)

    # --- Redis (L2); unset URL and host means in-process cache only
    redis_url: SecretStr | None = None
    redis_host: str | None = None
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_db: int = Field(default=0, ge=0)
    redis_socket_timeout_seconds: float = Field(default=0.25, gt=0, le=30)
    redis_connect_timeout_seconds: float = Field(default=0.25, gt=0, le=30)
    redis_max_connections: int = Field(default=50, ge=1, le=10_000)
    # Topologies beyond one server (each optional, at most one of the two):
    # Sentinel finds the master by name; a cluster starts from its nodes. The
    # URL then only carries credentials, database and rediss:// for TLS.
    redis_sentinels: str | None = None
    redis_sentinel_master: str | None = None
    redis_sentinel_password: SecretStr | None = None
    redis_cluster_nodes: str | None = None
    # TLS certificate files, for any topology (the URL, if any, says rediss://).
    redis_ssl_ca_certs: str | None = None
    redis_ssl_certfile: str | None = None
    redis_ssl_keyfile: str | None = None

    # --- cache
    cache_prefix: str = Field(default="salescast", min_length=1, max_length=64)
    # Idle lifetimes: the keys of these namespaces carry the versions their
    # values depend on, so a hit renews an entry (decision 0011); bounded by
    # the maximum lifetime, refreshed in the background near it and for
    # cache_stale_seconds after it.
    cache_ttl_model_seconds: int = Field(default=86_400, ge=1)
    cache_ttl_prediction_seconds: int = Field(default=86_400, ge=1)
    cache_ttl_data_seconds: int = Field(default=86_400, ge=1)
    cache_max_lifetime_seconds: int = Field(default=7 * 86_400, ge=1)
    cache_stale_seconds: int = Field(default=3_600, ge=0)
    cache_l1_max_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    cache_secret: SecretStr | None = None
    warmup_on_startup: bool = True
    warmup_max_products: int = Field(default=50, ge=0)
    warmup_concurrency: int = Field(default=2, ge=1, le=64)

    # --- bounding CPU work: forecasts computed at once (0 = one per core), in line, wait
    compute_max_running: int = Field(default=0, ge=0, le=256)
    compute_max_waiting: int = Field(default=64, ge=0, le=100_000)
    compute_max_wait_seconds: float = Field(default=30.0, gt=0, le=3600)

    # --- forecasting
    holidays_country: str | None = Field(default=None, min_length=2, max_length=3)
    interval_width: float = Field(default=0.8, gt=0, lt=1)
    seasonality_mode: Literal["additive", "multiplicative"] = "additive"
    yearly_seasonality: Literal["auto", "on", "off"] = "auto"
    weekly_seasonality: Literal["auto", "on", "off"] = "auto"
    # Per frequency (decision 0012): the backtest holds out the last periods, and
    # training needs the minimum of stored periods (see _training_periods).
    min_history_days: int = Field(default=60, ge=14)
    holdout_days: int = Field(default=28, ge=7)
    min_history_weeks: int = Field(default=66, ge=54)
    holdout_weeks: int = Field(default=13, ge=1)
    min_history_months: int = Field(default=24, ge=14)
    holdout_months: int = Field(default=6, ge=1)
    uncertainty_samples: int = Field(default=1000, ge=0, le=5000)
    # The rolling-origin backtest (salescast.forecasting.training.train_model): this
    # many holdouts, each before the next; their errors calibrate the forecast bands
    # (salescast.forecasting.calibration) unless calibrate_intervals is off.
    backtest_windows: int = Field(default=4, ge=1, le=10)
    calibrate_intervals: bool = True
    # Each window forecast by the correction of Prophet's points that did best on the
    # window before; each version keeps the best on its last (forecasting.adjustment).
    select_candidates: bool = True
    # numpy: Prophet's MAP fit in-process (salescast.forecasting.map_fit); cmdstan:
    # one CmdStan process per fit, as Prophet does by default.
    fit_backend: Literal["numpy", "cmdstan"] = "numpy"
    train_jobs: int = Field(default=1, ge=1, le=64)
    # Bulk trainings (POST /train, train --all, demo) on a Dask distributed
    # cluster instead of the local pool; see salescast.forecasting.dask_batch.
    dask_scheduler: str | None = None
    dask_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Training jobs are rows in the store; a worker refreshes its jobs' heartbeat
    # this often, and a job whose heartbeat is older than the second figure is
    # marked failed (its process died). See salescast.api.jobs.JobManager.
    job_heartbeat_seconds: float = Field(default=5.0, gt=0, le=3600)
    job_stale_after_seconds: float = Field(default=60.0, gt=0, le=86_400)
    default_horizon_days: int = Field(default=30, ge=1, le=730)

    # --- model versions (see salescast.forecasting.activation and docs/decisions/0010)
    # A training's new version is activated unless its backtest is worse than the
    # active version's (or than seasonal-naive) by more than this fraction.
    activation_margin: float = Field(default=0.05, ge=0, le=100)
    # After each training, keep this many newest versions of the product (and
    # the active one, whatever its age); 0 keeps every version.
    keep_versions: int = Field(default=0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _training_periods(self) -> Settings:
        for unit, beyond in TRAINING_PERIODS_BEYOND_HOLDOUT.items():
            holdout = getattr(self, f"holdout_{unit}s")
            minimum = getattr(self, f"min_history_{unit}s")
            if minimum < holdout + beyond:
                raise ValueError(
                    f"SALESCAST_MIN_HISTORY_{unit.upper()}S ({minimum}) must be at least "
                    f"SALESCAST_HOLDOUT_{unit.upper()}S + {beyond} ({holdout + beyond}): "
                    "the fit without the holdout needs that much"
                )
        return self

    @model_validator(mode="after")
    def _stale_after_heartbeats(self) -> Settings:
        if self.job_stale_after_seconds <= self.job_heartbeat_seconds:
            raise ValueError(
                "SALESCAST_JOB_STALE_AFTER_SECONDS must be longer than "
                "SALESCAST_JOB_HEARTBEAT_SECONDS (a live job would be marked failed)"
            )
        return self

    @field_validator("redis_sentinels", "redis_cluster_nodes")
    @classmethod
    def _addresses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_addresses(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("dask_scheduler")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return parse_scheduler_address(value)  # raises ValueError saying what is wrong

    @field_validator("redis_ssl_ca_certs", "redis_ssl_certfile", "redis_ssl_keyfile")
    @classmethod
    def _existing_file(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _one_redis_topology(self) -> Settings:
        if self.redis_sentinels and self.redis_cluster_nodes:
            raise ValueError(
                "SALESCAST_REDIS_SENTINELS and SALESCAST_REDIS_CLUSTER_NODES are both set: "
                "choose one topology"
            )
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise ValueError(
                "SALESCAST_REDIS_SENTINELS and SALESCAST_REDIS_SENTINEL_MASTER go together "
                "(the sentinels' addresses and the name of the master they monitor)"
            )
        if self.redis_host and (self.redis_sentinels or self.redis_cluster_nodes):
            raise ValueError(
                "SALESCAST_REDIS_HOST names one server; with Sentinel or a cluster, give "
                "credentials and rediss:// in SALESCAST_REDIS_URL instead"
            )
        if bool(self.redis_ssl_certfile) != bool(self.redis_ssl_keyfile):
            raise ValueError(
                "SALESCAST_REDIS_SSL_CERTFILE and SALESCAST_REDIS_SSL_KEYFILE go together "
                "(a client certificate and its key)"
            )
        url = self.redis_url.get_secret_value() if self.redis_url is not None else ""
        tls_files = self.redis_ssl_ca_certs or self.redis_ssl_certfile
        if tls_files and url and not url.startswith("rediss://"):
            raise ValueError(
                "SALESCAST_REDIS_SSL_* files are set but SALESCAST_REDIS_URL is not rediss:// "
                "(use rediss:// to connect with TLS)"
            )
        if tls_files and self.redis_host:
            raise ValueError(
                "SALESCAST_REDIS_SSL_* files are set but SALESCAST_REDIS_HOST makes a "
                "redis:// URL: give SALESCAST_REDIS_URL=rediss://... instead"
            )
        if self.redis_sentinel_password is not None and not self.redis_sentinels:
            raise ValueError(
                "SALESCAST_REDIS_SENTINEL_PASSWORD is set but SALESCAST_REDIS_SENTINELS is not"
            )
        if tls_files and not url and not (self.redis_sentinels or self.redis_cluster_nodes):
            raise ValueError(
                "SALESCAST_REDIS_SSL_* files are set but no Redis is: set SALESCAST_REDIS_URL "
                "(rediss://...), SALESCAST_REDIS_SENTINELS or SALESCAST_REDIS_CLUSTER_NODES"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        from salescast.store.urls import parse_database_url  # imports SQLAlchemy

        parse_database_url(value)  # raises DatabaseUrlError (a ValueError) with the reason
        return value

    @field_validator("holidays_country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        import holidays  # imported here: it is slow and only needed to validate

        code = value.upper()
        if code not in holidays.list_supported_countries():
            raise ValueError(f"unknown country code {value!r} (use an ISO code such as US or BR)")
        return code

    @property
    def redis_configured(self) -> bool:
        return bool(
            self.redis_url is not None
            or self.redis_host
            or self.redis_sentinels
            or self.redis_cluster_nodes
        )


def parse_addresses(text: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as pairs; ``ValueError`` naming the entry that is not one."""
    addresses = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{entry!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    if not addresses:
        raise ValueError("no host:port given")
    return addresses


def parse_scheduler_address(text: str) -> str:
    """A Dask scheduler's ``tcp://host:port``, stripped; ``ValueError`` saying what is wrong.

    Only ``tcp://``: TLS (``tls://``) needs certificates salescast has no settings for yet.
    """
    address = text.strip()
    scheme, sep, rest = address.partition("://")
    if not sep or scheme != "tcp":
        raise ValueError(f"{address!r} is not tcp://host:port (a Dask scheduler's address)")
    try:
        parse_addresses(rest)
    except ValueError:
        raise ValueError(
            f"{address!r} is not tcp://host:port (a Dask scheduler's address)"
        ) from None
    if "," in rest:
        raise ValueError(f"{address!r} names several addresses; give one scheduler")
    return address


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment, turning validation errors into one message.

    The message names the environment variable (``SALESCAST_REDIS_PORT``) rather
    than the field, since that is what the operator typed.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic accepts field kwargs
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from None


def describe_settings_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        if not field:  # a rule across settings: its message names the variables
            parts.append(err["msg"].removeprefix("Value error, "))
            continue
        shown = _URL_PASSWORD.sub(r"\1***@", repr(err.get("input")))
        parts.append(f"SALESCAST_{field.upper()}: {err['msg']} (got {shown})")
    return "invalid setting " + "; ".join(parts)
