"""Active model versions and the decoded models of the registry, cached in namespace `model`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from salescast.cache import MISSING, CachedFunction, IdleTTL, TieredCache, cached_model
from salescast.config import Settings
from salescast.forecasting import ModelRegistry, NoActiveModelError
from salescast.forecasting.adjustment import POINT_ADJUSTMENT, PointAdjustment
from salescast.forecasting.calibration import INTERVAL_CALIBRATION, IntervalCalibration
from salescast.forecasting.model_cache_codec import register_prophet_codec
from salescast.forecasting.model_codec import decode_model
from salescast.service.product_cache import product_tags

if TYPE_CHECKING:
    from prophet import Prophet


@dataclass(frozen=True)
class StoredCorrections:
    """A version's band factors (None: Prophet's band) and its correction of Prophet's
    points (None: Prophet's points)."""

    calibration: IntervalCalibration | None
    adjustment: PointAdjustment | None


@dataclass(frozen=True)
class LoadedModel:
    product_id: str
    version: int
    model: Prophet


class ModelService:
    """Which version is active, and that version's decoded Prophet model, cached.

    A model's key carries its version, so an entry can never be served for
    another version; a retrain or an activation invalidates the product's tag
    and writes the new version through (`prime`).
    """

    def __init__(self, settings: Settings, *, registry: ModelRegistry, cache: TieredCache) -> None:
        self._registry = registry
        self._model_at: CachedFunction[[str, int], Prophet] = cached_model(
            # keyed by the version: a hit renews the entry (decision 0011)
            ttl=IdleTTL(settings.cache_ttl_model_seconds),
            cache=cache,
            tags=product_tags,
        )(self.decode)

    def get_active_version(self, product_id: str) -> int:
        """The active model version; raises ProductNotFoundError, NoActiveModelError."""
        version = self._registry.get_active_version(product_id)
        if version is None:
            raise NoActiveModelError(product_id)
        return version

    async def aget_active_version(self, product_id: str) -> int:
        """As `get_active_version`, awaited on the event loop (batched on PostgreSQL)."""
        version = await self._registry.aget_active_version(product_id)
        if version is None:
            raise NoActiveModelError(product_id)
        return version

    def list_active_versions(self) -> dict[str, int | None]:
        """Every product's active version, None for untrained ones (one query, uncached)."""
        return self._registry.list_active_versions()

    def get_trained_at(self, product_id: str, version: int) -> dt.datetime:
        """When that version was stored; read only when a forecast is computed (a miss),
        never on a hit, so it is not cached."""
        return self._registry.get_trained_at(product_id, version)

    def get_corrections(self, product_id: str, version: int) -> StoredCorrections:
        """What that version's forecasts correct Prophet's by, from its metrics; read, like
        `get_trained_at`, only when a forecast is computed."""
        metrics = self._registry.get_metrics(product_id, version)
        return StoredCorrections(
            IntervalCalibration.from_stored(metrics.get(INTERVAL_CALIBRATION)),
            PointAdjustment.from_stored(metrics.get(POINT_ADJUSTMENT)),
        )

    def load_model(self, product_id: str) -> LoadedModel:
        """The active model of a product (cached in namespace `model`)."""
        version = self.get_active_version(product_id)
        return LoadedModel(product_id, version, self.get_model(product_id, version))

    def get_model(self, product_id: str, version: int) -> Prophet:
        """One version's model, from the cache or decoded from the registry (then cached)."""
        # The Prophet codec is registered on first use, not when the service is
        # built: importing Prophet costs every CLI command and server start ~1 s.
        register_prophet_codec()
        return self._model_at(product_id, version)

    def peek(self, product_id: str, version: int) -> Prophet | None:
        """The model if this worker's L1 holds it, else None; no I/O, no decoding."""
        found = self._model_at.peek(product_id, version)
        return None if found is MISSING else cast("Prophet", found)

    def prime(self, model: Prophet, product_id: str, version: int) -> None:
        """Store `model` as that version's entry, in both tiers (see `CachedFunction.prime`)."""
        register_prophet_codec()  # without it the model cannot be encoded: nothing is stored
        self._model_at.prime(model, product_id, version)

    def decode(self, product_id: str, version: int) -> Prophet:
        """What a miss computes: the stored blob of that version, decoded."""
        return decode_model(self._registry.get_model_blob(product_id, version))
