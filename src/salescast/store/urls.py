"""Which database URLs the store accepts, and the driver each one runs on."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# The drivers salescast installs and is tested with: sqlite3 from the standard
# library, psycopg 3 (psycopg[binary], pinned in requirements.lock).
_DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}


class DatabaseUrlError(ValueError):
    """The URL names no database salescast can store in; the message says why."""


def normalize_database_url(url: str) -> str:
    """`url` with its driver made explicit, or DatabaseUrlError.

    `postgresql://` and `postgres://` run on psycopg 3: SQLAlchemy alone would pick
    psycopg2 for a bare `postgresql://`, which salescast does not install, and fail
    with "No module named 'psycopg2'". A driver named in the URL must be one of the
    installed ones, so a URL never quietly runs on a driver other than the one it asks for.
    """
    return parse_database_url(url).render_as_string(hide_password=False)


def parse_database_url(url: str) -> URL:
    """The parsed form of `normalize_database_url`."""
    text = url.strip()
    if text.startswith("postgres://"):  # Heroku's and libpq's short scheme
        text = "postgresql://" + text.removeprefix("postgres://")
    try:
        parsed = make_url(text)
    except ArgumentError:
        raise DatabaseUrlError(
            f"not a database URL: {_shown(url)} "
            "(expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
        ) from None
    backend = parsed.get_backend_name()
    drivers = _DRIVERS.get(backend)
    if drivers is None:
        raise DatabaseUrlError(
            f"unsupported database {backend!r} in {_shown(url)}: "
            "salescast stores its data in SQLite or PostgreSQL"
        )
    driver = parsed.get_driver_name() if "+" in parsed.drivername else drivers[0]
    if driver not in drivers:
        raise DatabaseUrlError(
            f"driver {driver!r} in {_shown(url)} is not installed; "
            f"use {backend}+{drivers[0]}:// or plain {backend}://"
        )
    if backend == "postgresql" and not parsed.database:
        raise DatabaseUrlError(f"no database name in {_shown(url)}")
    return parsed.set(drivername=f"{backend}+{driver}")


def _shown(url: str) -> str:
    """The URL for a message, without its password."""
    try:
        return repr(make_url(url.strip()).render_as_string(hide_password=True))
    except ArgumentError:
        return repr(url[:80])
