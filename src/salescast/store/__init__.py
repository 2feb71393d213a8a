"""Sales history and model storage: schema, ingest, queries (SQLAlchemy; SQLite or PostgreSQL)."""

from salescast.store.database import Database
from salescast.store.errors import ProductNotFoundError, StoreError
from salescast.store.sales import ProductSummary, SalesPoint, SalesStore

__all__ = [
    "Database",
    "ProductNotFoundError",
    "ProductSummary",
    "SalesPoint",
    "SalesStore",
    "StoreError",
]
