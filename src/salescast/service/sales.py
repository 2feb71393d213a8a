"""Sales in and out: validated ingest, cached history, and the product listings built on them."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from salescast.cache import IdleTTL, TieredCache, cached
from salescast.config import Settings
from salescast.service.product_cache import invalidate_products, product_tags
from salescast.store import ProductNotFoundError, SalesStore
from salescast.store.ingest import ColumnSpec, ParsedSales, parse_csv, parse_json_rows
from salescast.store.resample import resample
from salescast.store.sales import Frequency, IngestMode, IngestResult

logger = logging.getLogger("salescast")


@dataclass(frozen=True)
class History:
    """A product's sales history as served (and cached): points are `{"date", "quantity"}`."""

    product_id: str
    data_version: int
    points: list[dict[str, Any]]


class SalesService:
    """Ingest and history over the sales store; history is cached in namespace `data`.

    Its key carries the product's data version, read from the store first, so
    an ingest (which bumps that version and invalidates the product's tag)
    makes the next read build a new key.
    """

    def __init__(self, settings: Settings, *, store: SalesStore, cache: TieredCache) -> None:
        self._store = store
        self._cache = cache
        self._history_at = cached(
            namespace="data",
            ttl=IdleTTL(settings.cache_ttl_data_seconds),  # keyed by the data version
            cache=cache,
            tags=product_tags,
        )(self._query_history)

    def ingest_csv(
        self,
        data: bytes,
        *,
        columns: ColumnSpec,
        mode: IngestMode = "append",
        freq: str | None = None,
    ) -> IngestResult:
        """Validate and store a CSV upload, all-or-nothing (IngestError lists the problems,
        FrequencyError says which dates fit no frequency)."""
        return self._ingest(parse_csv(data, columns), mode, freq)

    def ingest_rows(
        self,
        rows: object,
        *,
        columns: ColumnSpec,
        mode: IngestMode = "append",
        freq: str | None = None,
    ) -> IngestResult:
        """Validate and store JSON rows (a list of objects), all-or-nothing."""
        return self._ingest(parse_json_rows(rows, columns), mode, freq)

    def _ingest(self, parsed: ParsedSales, mode: IngestMode, freq: str | None) -> IngestResult:
        # A declared frequency sums the rows into its periods first (`resample`):
        # the store then sees one row per period, dated as the frequency dates them.
        if freq is not None:
            parsed = resample(parsed, freq)
        result = self._store.ingest(parsed, mode=mode, freq=freq)
        invalidate_products(self._cache, result.products)
        logger.info("ingested %d rows for %d products", result.rows, len(result.products))
        return result

    def get_history(
        self,
        product_id: str,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        freq: Frequency = "D",
    ) -> History:
        """Sales history (cached in namespace `data`, keyed by the product's data version)."""
        data_version = self._store.get_data_version(product_id)
        points = self._history_at(product_id, data_version, start, end, freq)
        return History(product_id, data_version, points)

    def _query_history(
        self,
        product_id: str,
        data_version: int,
        start: dt.date | None,
        end: dt.date | None,
        freq: Frequency,
    ) -> list[dict[str, Any]]:
        del data_version  # part of the cache key only: the store always answers with its latest
        points = self._store.get_history(product_id, start=start, end=end, freq=freq)
        return [{"date": p.date.isoformat(), "quantity": p.quantity} for p in points]

    def list_product_ids(self) -> list[str]:
        return self._store.list_product_ids()

    def resolve_products(self, product_ids: Sequence[str] | None) -> list[str]:
        """The listed ids, each once in the order given (every product when None), checked
        with one query; raises ProductNotFoundError for the first id the store does not know.
        (Each once: a batch trains a product at most once, and counts it once.)"""
        known = self._store.list_product_ids()
        if product_ids is None:
            return known
        known_set = set(known)
        for product_id in product_ids:
            if product_id not in known_set:
                raise ProductNotFoundError(product_id)
        return list(dict.fromkeys(product_ids))

    def list_warmup_products(self, limit: int) -> list[str]:
        """The busiest products (by the last 28 days of sales) that have an active model."""
        trained = {p.product_id for p in self._store.list_products() if p.active_version}
        busiest = self._store.list_busiest_products(limit=max(limit * 2, limit))
        return [p for p in busiest if p in trained][:limit]

    def list_untrained_product_ids(self) -> list[str]:
        return [p.product_id for p in self._store.list_products() if p.active_version is None]

    def load_demo_if_empty(self) -> IngestResult | None:
        """Load the bundled demo sales when the store holds no product; None if it did."""
        from salescast.demo import DEMO_COLUMNS, read_demo_csv

        if self._store.list_products():
            return None
        return self.ingest_csv(read_demo_csv(), columns=DEMO_COLUMNS)
