"""Forecasts from a product's active model: the cached prediction and the ETag-aware read."""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from typing import cast

import anyio.to_thread

from salescast.cache import (
    MISSING,
    CachedFunction,
    CacheSource,
    IdleTTL,
    TieredCache,
    cached_prediction,
)
from salescast.compute_gate import ComputeGate
from salescast.config import Settings
from salescast.forecasting import Forecast, NoActiveModelError, make_forecast
from salescast.forecasting.prediction import MAX_HORIZON, check_horizon
from salescast.service.forecast_batches import plan_forecast_batch
from salescast.service.models import ModelService
from salescast.service.product_cache import product_tags
from salescast.store import Database
from salescast.store.frequency import unit_of

DEFAULT_HORIZON = 30
"""Periods forecast when the caller names no horizon, capped at the product's frequency's
limit (30 days or weeks; a monthly product's 24 months)."""


def forecast_etag(product_id: str, version: int, horizon: int, interval: float) -> str:
    """Names the forecast by what determines it: a new active version changes the tag.

    The body is a function of exactly these four (`make_forecast`), so the tag
    names one body. The interval is written as its shortest round-trip repr:
    `:g` kept 6 digits, so 0.8 and 0.8000001 (two bodies) shared a tag.
    """
    return f'"{product_id}.v{version}.h{horizon}.i{float(interval)!r}"'


@dataclass(frozen=True)
class ForecastRead:
    """What to answer a forecast read: the forecast and who served it, or "not modified".

    `forecast` and `source` are None exactly when the client's ETag names the
    current forecast (`not_modified`, HTTP 304). `version` and `etag` are
    always those of the active model the read saw.
    """

    forecast: Forecast | None
    version: int
    etag: str
    source: CacheSource | None

    @property
    def not_modified(self) -> bool:
        return self.forecast is None


@dataclass(frozen=True)
class _ForecastKey:
    """The arguments of one cached prediction, and the ETag that names it."""

    product_id: str
    version: int
    horizon: int
    interval: float
    etag: str


class ForecastService:
    """Forecasts, cached in namespace `prediction` under the model version they come from.

    `read_forecast` (sync: CLI, warm-up, batch callers) and `aread_forecast`
    (async: the HTTP route) are two faces of one read, built from the same
    steps in the same order: read the active version, name it (`_key`: the
    ETag), answer "not modified" when the client's ETag names it, and only
    then `_look_up` (L1, L2, or compute). The faces differ only in how they
    run the two steps that may block: the version read and the lookup. The
    asyncio face first peeks at L1 on the loop (`peek_forecast`), so a warm
    forecast takes no thread; the sync face needs no peek, its lookup reads
    L1 first. Written as shared steps rather than one generator both faces
    drive, so each face reads top to bottom and mypy checks every value.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database,
        cache: TieredCache,
        models: ModelService,
        gate: ComputeGate,
        frequency_of: Callable[[str], str] = lambda _: "D",
    ) -> None:
        self._settings = settings
        self._database = database
        # The product's frequency: the horizon's unit and limit follow it. It never
        # changes once the product is stored, so each process reads it once per
        # product (one entry per product, like the store's own rows).
        self._frequency_of = frequency_of
        self._frequencies: dict[str, str] = {}
        self._models = models
        self._gate = gate
        self._forecast_at: CachedFunction[[str, int, int, float], Forecast] = cached_prediction(
            # keyed by the model version: a hit renews the entry (decision 0011)
            ttl=IdleTTL(settings.cache_ttl_prediction_seconds),
            cache=cache,
            tags=product_tags,
        )(self._compute_forecast)

    def read_forecast(
        self,
        product_id: str,
        *,
        horizon: int | None = None,
        interval: float | None = None,
        if_none_match: Set[str] = frozenset(),
    ) -> ForecastRead:
        """The forecast of the active model, or "not modified" if `if_none_match` holds its
        ETag; raises ProductNotFoundError, NoActiveModelError, HorizonError and (on a miss)
        ComputeBusyError. No `horizon`: `default_horizon`."""
        version = self._models.get_active_version(product_id)
        if horizon is None:
            horizon = self.default_horizon(product_id)
        key = self._key(product_id, version, horizon, interval)
        if key.etag in if_none_match:
            return _not_modified(key)
        return self._look_up(key)

    async def aread_forecast(
        self,
        product_id: str,
        *,
        horizon: int | None = None,
        interval: float | None = None,
        if_none_match: Set[str] = frozenset(),
    ) -> ForecastRead:
        """As `read_forecast`, for an event loop: a warm forecast is answered on the loop
        (on SQLite without leaving it at all); only a miss takes a worker thread."""
        version = await self._active_version_on_loop(product_id)
        if horizon is None:
            if product_id in self._frequencies or self._database.reads_are_local:
                horizon = self.default_horizon(product_id)
            else:  # the first read of this product's frequency in this process
                horizon = await anyio.to_thread.run_sync(self.default_horizon, product_id)
        key = self._key(product_id, version, horizon, interval)
        if key.etag in if_none_match:
            return _not_modified(key)
        forecast = self.peek_forecast(key.product_id, key.version, key.horizon, key.interval)
        if forecast is not None:  # an L1 hit, answered without leaving the loop
            return ForecastRead(forecast, key.version, key.etag, CacheSource.HIT_L1)
        # The lookup may wait on Redis or compute (Prophet, through the gate).
        return await anyio.to_thread.run_sync(self._look_up, key)

    async def _active_version_on_loop(self, product_id: str) -> int:
        if self._database.reads_are_local:
            # SQLite: the version read is a ~15 us file read, and an L1 hit does no
            # I/O at all, so a warm forecast never leaves the event loop (a thread
            # hop costs more than the whole hit).
            return self._models.get_active_version(product_id)
        # PostgreSQL: the read joins this loop's next batch of version reads,
        # one query for all of them (Database.read_scalar_batched).
        return await self._models.aget_active_version(product_id)

    def _key(
        self, product_id: str, version: int, horizon: int, interval: float | None
    ) -> _ForecastKey:
        # The version is read once: the ETag, the cache key and the body all name it.
        width = self._settings.interval_width if interval is None else interval
        etag = forecast_etag(product_id, version, horizon, width)
        return _ForecastKey(product_id, version, horizon, width, etag)

    def _look_up(self, key: _ForecastKey) -> ForecastRead:
        found = self._forecast_at.lookup(key.product_id, key.version, key.horizon, key.interval)
        return ForecastRead(found.value, key.version, key.etag, found.source)

    def plan_batch(self, product_ids: Sequence[str] | None) -> list[str]:
        """The products a many-product forecast reads, checked before any is read
        (`forecast_batches.plan_forecast_batch`): None means every trained product;
        raises UnknownProductsError, UntrainedProductsError naming every offender."""
        return plan_forecast_batch(self._models.list_active_versions(), product_ids)

    def interval_width(self, interval: float | None) -> float:
        """The interval width a read with `interval` uses: the setting when None."""
        return self._settings.interval_width if interval is None else interval

    def predict_sales(
        self, product_id: str, horizon: int = 30, interval: float | None = None
    ) -> Forecast:
        """Forecast `horizon` days after the active model's training window (cached)."""
        return self.forecast_version(
            product_id, self._models.get_active_version(product_id), horizon, interval
        )

    def forecast_version(
        self, product_id: str, version: int, horizon: int, interval: float | None = None
    ) -> Forecast:
        """Forecast from one given model version (cached in namespace `prediction`).

        On a miss the computation takes a slot of the compute gate and may
        raise ComputeBusyError; hits never wait.
        """
        width = self._settings.interval_width if interval is None else interval
        return self._forecast_at(product_id, version, horizon, width)

    def peek_forecast(
        self, product_id: str, version: int, horizon: int, interval: float | None = None
    ) -> Forecast | None:
        """The forecast `forecast_version` would return if this worker's L1 holds it, else
        None; no I/O and no computation, so an event loop may call it."""
        width = self._settings.interval_width if interval is None else interval
        found = self._forecast_at.peek(product_id, version, horizon, width)
        return None if found is MISSING else cast(Forecast, found)

    def frequency(self, product_id: str) -> str:
        """The product's frequency (read from the store once per process); raises
        ProductNotFoundError."""
        freq = self._frequencies.get(product_id)
        if freq is None:
            freq = self._frequencies[product_id] = self._frequency_of(product_id)
        return freq

    def default_horizon(self, product_id: str) -> int:
        """`DEFAULT_HORIZON` periods, at most the product's frequency's limit."""
        return min(DEFAULT_HORIZON, MAX_HORIZON[unit_of(self.frequency(product_id))])

    def warm_product(self, product_id: str) -> bool:
        """Load the model and the default forecast into the cache; False if untrained.

        The default horizon counts the product's periods, capped at its
        frequency's limit (30 months would be past a monthly product's 24).
        """
        limit = MAX_HORIZON[unit_of(self.frequency(product_id))]
        try:
            self.read_forecast(product_id, horizon=min(self._settings.default_horizon_days, limit))
        except NoActiveModelError:
            return False
        return True

    def _compute_forecast(
        self, product_id: str, version: int, horizon: int, interval: float
    ) -> Forecast:
        freq = self.frequency(product_id)
        check_horizon(horizon, freq)  # before taking a slot: a bad horizon costs no model load
        with self._gate.slot():
            model = self._models.get_model(product_id, version)
            # The body's generated_at is the version's trained-at time, so a recomputation
            # (another worker, a cache clear, a restart) gives the same bytes.
            trained_at = self._models.get_trained_at(product_id, version)
            corrections = self._models.get_corrections(product_id, version)
            return make_forecast(
                product_id,
                version,
                model,
                horizon=horizon,
                interval=interval,
                trained_at=trained_at,
                freq=freq,
                calibration=corrections.calibration,
                adjustment=corrections.adjustment,
            )


def _not_modified(key: _ForecastKey) -> ForecastRead:
    return ForecastRead(None, key.version, key.etag, None)
