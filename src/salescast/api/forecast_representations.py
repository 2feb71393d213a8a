"""A forecast as PNG, SVG or CSV: the forecast route's answers other than JSON.

Each representation has its own ETag (the JSON one with a suffix), so a 304
answers only for the representation the tag came from, and every answer says
`Vary: Accept`, since the same URL gives different bodies by that header.
CSV is written from the cached forecast (it is cheap) by `POST /forecasts`'
writer, so both routes give one product the same bytes; charts are cached
whole by `PlotService` (namespace `plot`).
"""

from __future__ import annotations

from collections.abc import Set

import anyio.to_thread
from fastapi import Response, status

from salescast.api.negotiation import MEDIA_TYPES, Representation
from salescast.cache import CacheSource
from salescast.forecasting.chart import ChartFormat
from salescast.service import SalescastService
from salescast.service.batch_output import CSVBatchWriter

VARY = {"Vary": "Accept"}


async def answer_representation(
    service: SalescastService,
    product_id: str,
    *,
    horizon: int,
    interval: float | None,
    representation: Representation,
    if_none_match: Set[str],
) -> Response:
    """The PNG, SVG or CSV answer (or 304) of one forecast request."""
    if representation == "csv":
        return await _csv(service, product_id, horizon, interval, if_none_match)
    chart: ChartFormat = "png" if representation == "png" else "svg"
    read = await anyio.to_thread.run_sync(
        lambda: service.read_plot(
            product_id, horizon=horizon, interval=interval, fmt=chart, if_none_match=if_none_match
        )
    )
    if read.body is None:
        return _not_modified(read.etag)
    return _body(read.body, representation, read.etag, read.source)


async def _csv(
    service: SalescastService,
    product_id: str,
    horizon: int,
    interval: float | None,
    if_none_match: Set[str],
) -> Response:
    # The CSV's tags sent back, as the JSON tags they extend: the service then
    # answers "not modified" before looking the forecast up, as for JSON.
    json_tags = {
        f'{tag.removesuffix(CSV_SUFFIX)}"' for tag in if_none_match if tag.endswith(CSV_SUFFIX)
    }
    read = await service.aread_forecast(
        product_id, horizon=horizon, interval=interval, if_none_match=json_tags
    )
    etag = csv_etag(read.etag)
    if read.forecast is None:
        return _not_modified(etag)
    # POST /forecasts' writer: one product's CSV is the same bytes in both routes.
    writer = CSVBatchWriter()
    body = (writer.start() + writer.forecast(read.forecast)).encode()
    return _body(body, "csv", etag, read.source)


CSV_SUFFIX = '.csv"'


def csv_etag(json_etag: str) -> str:
    """The CSV representation's ETag: the JSON one with `.csv` inside the quotes."""
    return f"{json_etag[:-1]}{CSV_SUFFIX}"


def _body(
    body: bytes, representation: Representation, etag: str, source: CacheSource | None
) -> Response:
    headers = {"ETag": etag, "X-Cache": str(source or CacheSource.MISS), **VARY}
    media_type = MEDIA_TYPES[representation]
    if representation == "csv":
        media_type += "; charset=utf-8"
    return Response(body, media_type=media_type, headers=headers)


def _not_modified(etag: str) -> Response:
    return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag, **VARY})
