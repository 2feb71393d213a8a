"""Forecast charts (PNG, SVG): rendered once per version, cached in namespace `plot`."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from salescast.cache import CachedFunction, CacheSource, IdleTTL, TieredCache, cached
from salescast.compute_gate import ComputeGate
from salescast.config import Settings
from salescast.forecasting.chart import ChartFormat, history_tail_start, render_forecast_chart
from salescast.service.forecasts import ForecastService, forecast_etag
from salescast.service.models import ModelService
from salescast.service.product_cache import product_tags
from salescast.service.sales import SalesService
from salescast.store import SalesStore


def plot_etag(
    product_id: str, version: int, data_version: int, horizon: int, interval: float, fmt: str
) -> str:
    """The forecast's ETag with the history's data version and the format appended.

    A chart also draws the history tail, so an ingest (a new data version)
    changes it even when the model stays; the format suffix keeps one
    representation's tag from answering 304 for another.
    """
    return f'{forecast_etag(product_id, version, horizon, interval)[:-1]}.d{data_version}.{fmt}"'


@dataclass(frozen=True)
class PlotRead:
    """A chart and who served it, or "not modified" (`body` and `source` None)."""

    body: bytes | None
    etag: str
    source: CacheSource | None


class PlotService:
    """Charts of the active model's forecast over the product's recent history.

    An entry's key holds everything the picture depends on: the model version
    (the forecast), the data version (the history tail), horizon, interval
    and format; it carries the product's tag, so a retrain, an activation or
    an ingest reclaims it like the product's other entries. The forecast comes
    through `ForecastService.forecast_version`, so a chart and the JSON of the
    same version show the same numbers and share one cached prediction.
    Rendering (about 0.1 s) takes a compute-gate slot, as a prediction does.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: SalesStore,
        cache: TieredCache,
        models: ModelService,
        forecasts: ForecastService,
        sales: SalesService,
        gate: ComputeGate,
    ) -> None:
        self._settings = settings
        self._store = store
        self._models = models
        self._forecasts = forecasts
        self._sales = sales
        self._gate = gate
        self._plot_at: CachedFunction[[str, int, int, int, float, ChartFormat], bytes] = cached(
            namespace="plot",
            # keyed by both versions: a hit renews the entry (decision 0011)
            ttl=IdleTTL(settings.cache_ttl_prediction_seconds),
            cache=cache,
            tags=product_tags,
        )(self._render)

    def read_plot(
        self,
        product_id: str,
        *,
        horizon: int,
        interval: float | None = None,
        fmt: ChartFormat,
        if_none_match: Set[str] = frozenset(),
    ) -> PlotRead:
        """The chart, or "not modified" if `if_none_match` holds its ETag; raises
        ProductNotFoundError, NoActiveModelError, ComputeBusyError (on a miss)."""
        version = self._models.get_active_version(product_id)
        data_version = self._store.get_data_version(product_id)
        width = self._settings.interval_width if interval is None else interval
        etag = plot_etag(product_id, version, data_version, horizon, width, fmt)
        if etag in if_none_match:
            return PlotRead(None, etag, None)
        found = self._plot_at.lookup(product_id, version, data_version, horizon, width, fmt)
        return PlotRead(found.value, etag, found.source)

    def _render(
        self,
        product_id: str,
        version: int,
        data_version: int,
        horizon: int,
        interval: float,
        fmt: ChartFormat,
    ) -> bytes:
        del data_version  # part of the key only: the history read names its own
        # Forecast first and outside the slot: a miss there takes a slot itself.
        forecast = self._forecasts.forecast_version(product_id, version, horizon, interval)
        history = self._sales.get_history(product_id, start=history_tail_start(forecast))
        with self._gate.slot():
            return render_forecast_chart(forecast, history.points, fmt=fmt)
