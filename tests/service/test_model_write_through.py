"""A new active model version is written through to the cache: its first forecast decodes none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from salescast.cache import NamespaceStats
from salescast.config import Settings
from salescast.forecasting.model_codec import encode_model
from salescast.service import SalescastService

P1, P2 = "CA_1-FOODS_3", "CA_3-FOODS_3"


def model_stats(service: SalescastService) -> NamespaceStats:
    return service.cache.stats().namespaces["model"]


def counts(service: SalescastService) -> tuple[int, int, int]:
    """(hits, misses, computations) of the `model` namespace; computations are decodes."""
    stats = model_stats(service)
    return stats.hits, stats.misses, stats.computations


@pytest.fixture
def two_workers(redis_settings: Settings) -> Iterator[tuple[SalescastService, SalescastService]]:
    """Two services (own L1 each) over one store and one Redis, as two server workers."""
    a, b = SalescastService(redis_settings), SalescastService(redis_settings)
    assert a.cache.wait_subscribed(5)
    assert b.cache.wait_subscribed(5)
    yield a, b
    a.close()
    b.close()


def test_the_first_forecast_after_a_retrain_decodes_no_model(
    demo_service: SalescastService,
) -> None:
    assert demo_service.predict_sales(P1, 7)["model_version"] == 1
    assert counts(demo_service) == (0, 1, 1)
    assert demo_service.train_product(P1).version == 2
    forecast = demo_service.predict_sales(P1, 7)
    assert forecast["model_version"] == 2
    assert counts(demo_service) == (1, 1, 1)  # one more hit; no miss, no decode
    assert demo_service.cache.stats().namespaces["prediction"].computations == 2


def test_a_primed_model_is_stored_under_the_new_version_only(
    demo_service: SalescastService,
) -> None:
    demo_service.load_model(P1)  # version 1 cached, before the retrain
    demo_service.train_product(P1)
    models = demo_service.models
    primed = models.peek(P1, 2)
    assert primed is not None
    assert models.peek(P1, 1) is None  # the retrain's invalidation dropped it
    assert models.peek(P1, 3) is None
    assert models.peek(P2, 2) is None
    blob = demo_service.registry.get_model_blob(P1, 2)
    assert encode_model(primed) == blob  # exactly what decoding the stored version gives
    assert demo_service.load_model(P1).model is primed
    assert counts(demo_service) == (2, 1, 1)  # the peek and the load hit; v1 was the decode


def test_batch_training_in_worker_processes_primes_every_new_version(
    demo_service: SalescastService,
) -> None:
    summaries = demo_service.train_products([P1, P2], force=True, jobs=2)
    assert sorted((s.product_id, s.version) for s in summaries) == [(P1, 2), (P2, 2)]
    for product in (P1, P2):
        assert demo_service.predict_sales(product, 7)["model_version"] == 2
    assert counts(demo_service) == (2, 0, 0)


def test_a_rollback_primes_the_version_it_activates(demo_service: SalescastService) -> None:
    demo_service.train_product(P1)
    demo_service.predict_sales(P1, 7)
    demo_service.activate_model(P1, 1)
    assert demo_service.models.peek(P1, 2) is None
    assert demo_service.predict_sales(P1, 7)["model_version"] == 1
    assert counts(demo_service) == (2, 0, 0)


def test_another_worker_reads_a_retrained_model_from_redis(
    two_workers: tuple[SalescastService, SalescastService],
) -> None:
    a, b = two_workers
    assert b.predict_sales(P1, 7)["model_version"] == 1
    a.train_product(P1)
    assert b.predict_sales(P1, 7)["model_version"] == 2
    stats = model_stats(b)
    assert (stats.l2.hits, stats.misses, stats.computations) == (1, 1, 1)  # v1: decoded
    assert model_stats(a).computations == 0


def test_a_failed_write_through_leaves_the_retrain_in_place(
    demo_service: SalescastService,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(blob: bytes) -> object:
        raise ValueError("cannot decode")

    monkeypatch.setattr("salescast.service.training.decode_model", broken)
    info = demo_service.train_product(P1)
    assert (info.version, info.active) == (2, True)
    assert "writing it through to the cache failed" in caplog.text
    monkeypatch.undo()
    assert demo_service.predict_sales(P1, 7)["model_version"] == 2
    assert counts(demo_service) == (0, 1, 1)  # nothing primed: the forecast decoded it
