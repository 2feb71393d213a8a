"""Fixtures for the cache inside the service: a real redis-server and apps that share it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from salescast.api.app import create_app
from salescast.config import Settings
from salescast.service import SalescastService
from tests.conftest import make_settings
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def raw_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def redis_settings(demo_database_url: str, redis_server: RedisServer) -> Settings:
    """Settings over a private trained store and the shared redis-server, own key prefix."""
    return make_settings(
        demo_database_url,
        redis_url=redis_server.url,
        cache_prefix=f"t{uuid.uuid4().hex[:10]}",
    )


@pytest.fixture
def make_client() -> Iterator[Callable[[Settings], TestClient]]:
    """Builds apps (each with its own service, cache and L1: one per simulated worker)."""
    opened: list[tuple[TestClient, SalescastService]] = []

    def make(settings: Settings) -> TestClient:
        service = SalescastService(settings)
        client = TestClient(create_app(settings, service=service))
        client.__enter__()
        service.cache.wait_subscribed(5)
        opened.append((client, service))
        return client

    yield make
    for client, service in opened:
        client.__exit__(None, None, None)
        service.close()
