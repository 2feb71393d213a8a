"""The service's forecast read: ETag revalidation and who answered, through both faces."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import anyio.to_thread
import pytest

from salescast.cache import CacheSource
from salescast.config import Settings
from salescast.forecasting import NoActiveModelError
from salescast.service import ForecastRead, SalescastService, forecast_etag
from salescast.store import ProductNotFoundError
from salescast.store.ingest import ColumnSpec

P1 = "CA_1-FOODS_3"
Read = Callable[..., ForecastRead]


def sync_read(service: SalescastService) -> Read:
    return service.read_forecast


def async_read(service: SalescastService) -> Read:
    def read(product_id: str, **kwargs: Any) -> ForecastRead:
        return asyncio.run(service.aread_forecast(product_id, **kwargs))

    return read


@pytest.fixture(params=[sync_read, async_read], ids=["read_forecast", "aread_forecast"])
def face(request: pytest.FixtureRequest) -> Callable[[SalescastService], Read]:
    """Each test runs through the sync face (CLI, warm-up) and the async one (HTTP)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def two_workers(redis_settings: Settings) -> Iterator[tuple[SalescastService, SalescastService]]:
    """Two services (own L1 each) over one store and one Redis, as two server workers."""
    a, b = SalescastService(redis_settings), SalescastService(redis_settings)
    assert a.cache.wait_subscribed(5)
    assert b.cache.wait_subscribed(5)
    yield a, b
    a.close()
    b.close()


def test_a_matching_etag_is_not_modified_and_any_other_gets_the_forecast(
    demo_service: SalescastService, face: Callable[[SalescastService], Read]
) -> None:
    read = face(demo_service)
    first = read(P1, horizon=7, interval=0.9)
    assert first.etag == forecast_etag(P1, 1, 7, 0.9) == f'"{P1}.v1.h7.i0.9"'
    assert first.forecast is not None
    assert (first.version, first.forecast["model_version"], len(first.forecast["points"])) == (
        1,
        1,
        7,
    )
    assert (first.source, first.not_modified) == (CacheSource.MISS, False)

    unchanged = read(P1, horizon=7, interval=0.9, if_none_match={'"other"', first.etag})
    assert unchanged == ForecastRead(None, 1, first.etag, None)
    assert unchanged.not_modified

    other = read(P1, horizon=8, interval=0.9, if_none_match={first.etag})
    assert other.forecast is not None
    assert (other.etag, other.source) == (forecast_etag(P1, 1, 8, 0.9), CacheSource.MISS)


def test_the_default_interval_is_the_settings_one_in_the_etag_and_the_key(
    demo_service: SalescastService, face: Callable[[SalescastService], Read]
) -> None:
    read = face(demo_service)
    width = demo_service.settings.interval_width
    default = read(P1, horizon=5)
    assert default.etag == forecast_etag(P1, 1, 5, width)
    assert read(P1, horizon=5, interval=width).source is CacheSource.HIT_L1


def test_sources_are_miss_then_l1_here_and_l2_in_another_worker(
    two_workers: tuple[SalescastService, SalescastService],
    face: Callable[[SalescastService], Read],
) -> None:
    a, b = two_workers
    assert face(a)(P1, horizon=6).source is CacheSource.MISS
    assert face(a)(P1, horizon=6).source is CacheSource.HIT_L1
    from_redis = face(b)(P1, horizon=6)
    assert from_redis.source is CacheSource.HIT_L2
    assert face(b)(P1, horizon=6).source is CacheSource.HIT_L1
    assert from_redis.forecast == face(a)(P1, horizon=6).forecast
    assert b.cache.stats().namespaces["prediction"].computations == 0


def test_a_retrain_changes_the_etag_and_the_old_one_gets_the_new_forecast(
    demo_service: SalescastService, face: Callable[[SalescastService], Read]
) -> None:
    read = face(demo_service)
    before = read(P1, horizon=7)
    demo_service.train_product(P1)
    after = read(P1, horizon=7, if_none_match={before.etag})
    assert after.forecast is not None
    assert (after.version, after.forecast["model_version"]) == (2, 2)
    assert (after.etag, after.source) == (forecast_etag(P1, 2, 7, 0.8), CacheSource.MISS)


def test_unknown_and_untrained_products_raise_the_domain_errors(
    demo_service: SalescastService, face: Callable[[SalescastService], Read]
) -> None:
    read = face(demo_service)
    with pytest.raises(ProductNotFoundError):
        read("nope", horizon=7)
    demo_service.ingest_rows(
        [{"date": "2024-01-01", "product_id": "fresh", "quantity": 1}],
        columns=ColumnSpec(),
    )
    with pytest.raises(NoActiveModelError):
        read("fresh", horizon=7, if_none_match={'"fresh.v1.h7.i0.8"'})


def test_only_a_miss_takes_a_thread_and_the_version_read_is_batched_on_postgresql(
    demo_service: SalescastService, store_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[object] = []
    batched: list[str] = []
    run_sync = anyio.to_thread.run_sync
    read_batched = demo_service.database.read_scalar_batched

    async def counted_hop(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(function)
        return await run_sync(function, *args, **kwargs)

    async def counted_read(statement: Any, key: str) -> Any:
        batched.append(key)
        return await read_batched(statement, key)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted_hop)
    monkeypatch.setattr(demo_service.database, "read_scalar_batched", counted_read)

    async def three_reads() -> list[ForecastRead]:
        miss = await demo_service.aread_forecast(P1, horizon=4)
        hit = await demo_service.aread_forecast(P1, horizon=4)
        unchanged = await demo_service.aread_forecast(P1, horizon=4, if_none_match={hit.etag})
        return [miss, hit, unchanged]

    reads = asyncio.run(three_reads())
    assert [r.source for r in reads] == [CacheSource.MISS, CacheSource.HIT_L1, None]
    assert len(hops) == 1  # the miss; the hit and the 304 stayed on the loop
    assert batched == ([P1] * 3 if store_kind == "postgresql" else [])


def test_warm_up_reads_the_default_forecast_into_the_cache(
    demo_service: SalescastService,
) -> None:
    assert demo_service.warm_product(P1) is True
    horizon = demo_service.settings.default_horizon_days
    assert demo_service.read_forecast(P1, horizon=horizon).source is CacheSource.HIT_L1
    demo_service.ingest_rows(
        [{"date": "2024-01-01", "product_id": "fresh", "quantity": 1}],
        columns=ColumnSpec(),
    )
    assert demo_service.warm_product("fresh") is False
