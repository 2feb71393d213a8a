"""Sales, models and jobs: schema, ingest, queries (SQLAlchemy; SQLite or PostgreSQL)."""

from salescast.store.database import Database
from salescast.store.errors import ProductNotFoundError, StoreError, StoreUnavailableError
from salescast.store.frequency import FrequencyError
from salescast.store.jobs import JobOwner, JobRecord, JobResult, JobStatus, JobStore
from salescast.store.product_listing import ListedProduct, ProductPage, ProductQuery
from salescast.store.sales import ProductSummary, SalesPoint, SalesStore

__all__ = [
    "Database",
    "FrequencyError",
    "JobOwner",
    "JobRecord",
    "JobResult",
    "JobStatus",
    "JobStore",
    "ListedProduct",
    "ProductNotFoundError",
    "ProductPage",
    "ProductQuery",
    "ProductSummary",
    "SalesPoint",
    "SalesStore",
    "StoreError",
    "StoreUnavailableError",
]
