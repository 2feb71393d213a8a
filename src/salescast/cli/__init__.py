"""The `salescast` command line."""

from __future__ import annotations

from salescast.config import load_settings
from salescast.service import SalescastService


def open_service() -> SalescastService:
    """The service on the environment's settings; use it in a `with` block, which closes it
    (its cache's Redis connections and subscriber, the store's pool) however the command ends."""
    return SalescastService(load_settings())
