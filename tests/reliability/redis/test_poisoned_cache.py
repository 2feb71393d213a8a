"""Bytes written straight into Redis under salescast's keys are misses, counted, never run."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from salescast.api.app import create_app
from salescast.config import Settings
from salescast.service import SalescastService
from tests.conftest import make_settings
from tests.reliability.redis.figures import REDIS_LINES
from tests.support.redis_server import RedisServer

P1, P2 = "CA_1-FOODS_3", "CA_3-FOODS_3"
MARKER = Path("/tmp") / f"salescast-poison-{uuid.uuid4().hex}"


class Exploit:
    """Unpickling this would create MARKER: the proof a value was executed."""

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(MARKER), "w"))


@pytest.fixture(scope="module")
def poison_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def workers(
    demo_database_url: str, poison_redis: RedisServer
) -> Iterator[Callable[..., TestClient]]:
    """Fresh apps (fresh L1) over one store and one Redis prefix, like new workers."""
    prefix = f"poison{uuid.uuid4().hex[:8]}"
    opened: list[tuple[TestClient, SalescastService]] = []

    def make(**overrides: object) -> TestClient:
        settings: Settings = make_settings(
            demo_database_url,
            redis_url=SecretStr(poison_redis.url),
            cache_prefix=prefix,
            **overrides,
        )
        service = SalescastService(settings)
        client = TestClient(create_app(settings, service=service))
        client.__enter__()
        opened.append((client, service))
        return client

    yield make
    for client, service in opened:
        client.__exit__(None, None, None)
        service.close()


def prediction_key(raw: redis.Redis, client: TestClient, product: str) -> bytes:
    prefix = client.app.state.settings.cache_prefix  # type: ignore[attr-defined]
    [key] = list(raw.scan_iter(f"{prefix}:prediction:{{{prefix}:product:{product}}}:*"))
    return key


def l2_errors(client: TestClient) -> int:
    return client.get("/cache/stats").json()["namespaces"]["prediction"]["l2"]["errors"]


def poisons(raw: redis.Redis, good: bytes, other: bytes) -> dict[str, bytes]:
    return {
        "random bytes": b"\x8f\x00\xa1garbage\xff" * 7,
        "truncated value": good[: len(good) // 2],
        "header only": good[:13],
        "valid value of another key": raw.get(other) or b"",
        "old format version": good[:2] + bytes([0]) + good[3:],
        "unknown codec id": good[:3] + bytes([250]) + good[4:],
        "pickle of an exploit": pickle.dumps(Exploit()),
        "framed pickle": good[:13] + pickle.dumps(Exploit()),
    }


def test_poisoned_values_are_counted_misses_and_never_executed(
    workers: Callable[..., TestClient], poison_redis: RedisServer
) -> None:
    raw = redis.Redis.from_url(poison_redis.url)
    try:
        first = workers()
        assert first.get(f"/products/{P1}/forecast").status_code == 200
        assert first.get(f"/products/{P2}/forecast").status_code == 200
        key, other = prediction_key(raw, first, P1), prediction_key(raw, first, P2)
        good = raw.get(key)
        assert good is not None
        for name, value in poisons(raw, good, other).items():
            raw.set(key, value, ex=600)
            fresh = workers()  # empty L1: the next read goes to Redis
            response = fresh.get(f"/products/{P1}/forecast")
            assert response.status_code == 200, name
            assert response.headers["x-cache"] == "MISS", name
            assert response.json()["product_id"] == P1, name
            assert l2_errors(fresh) == 1, name
            assert not MARKER.exists(), name
            REDIS_LINES.append(
                f"poisoned cache, {name}: 200 MISS, 1 L2 error counted, not executed"
            )
    finally:
        raw.close()


def test_with_a_secret_a_value_signed_with_another_secret_is_a_miss(
    workers: Callable[..., TestClient], poison_redis: RedisServer
) -> None:
    raw = redis.Redis.from_url(poison_redis.url)
    try:
        forger = workers(cache_secret=SecretStr("not-the-real-secret"))
        assert forger.get(f"/products/{P1}/forecast").status_code == 200
        honest = workers(cache_secret=SecretStr("the-real-secret"))
        response = honest.get(f"/products/{P1}/forecast")
        assert (response.status_code, response.headers["x-cache"]) == (200, "MISS")
        assert l2_errors(honest) == 1
        # its own signed value, with one payload byte flipped, is refused too
        key = prediction_key(raw, honest, P1)
        signed = bytearray(raw.get(key) or b"")
        signed[-1] ^= 0xFF
        raw.set(key, bytes(signed), ex=600)
        again = workers(cache_secret=SecretStr("the-real-secret"))
        assert again.get(f"/products/{P1}/forecast").headers["x-cache"] == "MISS"
        assert l2_errors(again) == 1
        REDIS_LINES.append("poisoned cache, wrong HMAC and altered signed value: misses, counted")
    finally:
        raw.close()
