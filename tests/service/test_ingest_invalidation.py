"""An ingest invalidates the product's cached entries: in its own worker and in every other one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from salescast.cache import product_tag
from salescast.config import Settings
from salescast.service import SalescastService
from salescast.store.ingest import ColumnSpec
from tests.cache.polling import eventually

P1, P2 = "CA_1-FOODS_3", "CA_3-FOODS_3"
NEW_DAY = [{"date": "2016-04-25", "product_id": P1, "quantity": 5}]
MakeService = Callable[[Settings], SalescastService]


@pytest.fixture
def make_service() -> Iterator[MakeService]:
    """Services on one store and one Redis, each with its own cache and L1: one per worker."""
    made: list[SalescastService] = []

    def make(settings: Settings) -> SalescastService:
        service = SalescastService(settings)
        made.append(service)
        assert service.cache.wait_subscribed(5)
        return service

    yield make
    for service in made:
        service.close()


def l1_entries(service: SalescastService) -> int:
    usage = service.cache.stats().l1
    assert usage is not None
    return usage.entries


def test_an_ingest_bumps_the_products_tag_and_empties_every_workers_l1_of_its_history(
    make_service: MakeService, redis_settings: Settings
) -> None:
    writer, reader = make_service(redis_settings), make_service(redis_settings)
    tag = product_tag(P1)
    before = writer.get_history(P1)
    assert reader.get_history(P1) == before  # now in both workers' L1 (the reader's from L2)
    assert (l1_entries(writer), l1_entries(reader)) == (1, 1)
    generation = reader.cache.tag_generation(tag)
    assert writer.cache.tag_generation(tag) == generation

    writer.ingest_rows(NEW_DAY, columns=ColumnSpec())

    assert writer.cache.tag_generation(tag) == generation + 1
    assert l1_entries(writer) == 0
    # The other worker hears it over pub/sub: its old entry goes, its generation follows.
    assert eventually(lambda: l1_entries(reader) == 0)
    assert reader.cache.tag_generation(tag) == generation + 1
    after = reader.get_history(P1)
    assert after.data_version == before.data_version + 1
    assert after.points[-1] == {"date": "2016-04-25", "quantity": 5.0}


def test_an_ingest_leaves_the_cached_history_of_other_products_alone(
    make_service: MakeService, redis_settings: Settings
) -> None:
    writer, reader = make_service(redis_settings), make_service(redis_settings)
    reader.get_history(P1)
    reader.get_history(P2)
    assert l1_entries(reader) == 2
    other = reader.cache.tag_generation(product_tag(P2))

    writer.ingest_rows(NEW_DAY, columns=ColumnSpec())

    assert eventually(lambda: l1_entries(reader) == 1)  # P1's entry went, P2's stayed
    assert reader.cache.tag_generation(product_tag(P2)) == other
    assert reader.cache.tag_generation(product_tag(P1)) == writer.cache.tag_generation(
        product_tag(P1)
    )
