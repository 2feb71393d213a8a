"""The seed's public names: RedisCache (plain key/value on Redis) and ModelCache."""

from __future__ import annotations

from typing import Any

from salescast.cache.backends.redis import RedisBackend
from salescast.cache.breaker import CircuitBreaker
from salescast.cache.guard import Unavailable
from salescast.cache.health import CacheHealth, CacheStats
from salescast.cache.lookup import MISSING
from salescast.cache.tiered import TieredCache

_KV_NAMESPACE = "kv"


class RedisCache:
    """Get/set by string key in Redis, under ``prefix``; never raises on Redis trouble.

    ``get`` returns ``default`` on a miss, on a Redis failure and while the
    breaker is open; ``set`` then returns ``False`` (skipped). Both are counted
    in ``stats()``. Values go through the same framing as the tiered cache
    (orjson/bytes/registered codecs, zstd, optional HMAC); keys are hashed
    into ``prefix:kv:<hash>``, so ``clear()`` removes exactly this cache's keys
    (SCAN + UNLINK) and nothing else in the same Redis.

    Timeouts default to 0.25 s (see ``RedisBackend`` for why);
    ``socket_connect_timeout`` defaults to ``socket_timeout``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        socket_timeout: float = 0.25,
        socket_connect_timeout: float | None = None,
        max_connections: int = 50,
        prefix: str = "salescast",
        secret: bytes | str | None = None,
        breaker: CircuitBreaker | None = None,
        url: str | None = None,
    ) -> None:
        self.backend = RedisBackend(
            url,
            host=host,
            port=port,
            db=db,
            password=password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=(
                socket_connect_timeout if socket_connect_timeout is not None else socket_timeout
            ),
            max_connections=max_connections,
        )
        self._cache = TieredCache(
            l2=self.backend,
            use_l1=False,
            subscribe=False,
            prefix=prefix,
            secret=secret,
            breaker=breaker,
            lease_ttl=0,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisCache:
        """From ``redis://[:password@]host:port/db`` or ``rediss://`` (TLS)."""
        return cls(url=url, **options)

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        value = self._cache.get(_KV_NAMESPACE, key).value
        return default if value is MISSING else value

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` for ``ttl`` seconds; ``False`` when skipped or not encodable."""
        entry_key = self._cache.entry_key(_KV_NAMESPACE, key)
        data = self._cache.io.encode(_KV_NAMESPACE, entry_key, value)
        if data is None:
            return False
        result = self._cache.guard.call(lambda: self.backend.set(entry_key, data, ttl))
        self._cache.io.after_l2_write(_KV_NAMESPACE, result, len(data))
        return not isinstance(result, Unavailable)

    def expire(self, key: str, ttl: float) -> bool:
        """Give ``key`` a new TTL in seconds; ``False`` when absent or Redis is unavailable."""
        entry_key = self._cache.entry_key(_KV_NAMESPACE, key)
        return self._counted(self._cache.guard.call(lambda: self.backend.expire(entry_key, ttl)))

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when it existed."""
        return self._cache.delete(_KV_NAMESPACE, key)

    def exists(self, key: str) -> bool:
        """``True`` when ``key`` is stored (``False`` when Redis is unavailable)."""
        entry_key = self._cache.entry_key(_KV_NAMESPACE, key)
        return self._counted(self._cache.guard.call(lambda: self.backend.exists(entry_key)))

    def _counted(self, result: bool | Unavailable) -> bool:
        if isinstance(result, Unavailable):
            self._cache.io.count_unavailable(_KV_NAMESPACE, result)
            return False
        return result

    def clear(self) -> int:
        """Remove every key of this cache's prefix (SCAN + UNLINK); return how many."""
        return self._cache.clear()

    def stats(self) -> CacheStats:
        """Counters (namespace ``kv``, tier ``l2``) and breaker state."""
        return self._cache.stats()

    def health(self) -> CacheHealth:
        """Reachability, version, latency, breaker state."""
        return self._cache.health()

    def close(self) -> None:
        """Release the connection pool."""
        self._cache.close()

    def __enter__(self) -> RedisCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def product_tag(product_id: str) -> str:
    """The tag every cached thing of one product carries: ``product:<id>``."""
    return f"product:{product_id}"


class ModelCache:
    """Models and predictions per product, keyed by the model's durable version.

    Entries carry the tag ``product:<id>``, so ``invalidate_product`` reaches
    all of a product's models and predictions in every process at once.
    Getters return ``None`` on a miss.
    """

    def __init__(
        self,
        cache: TieredCache,
        *,
        model_ttl: float = 21600.0,
        prediction_ttl: float = 3600.0,
    ) -> None:
        self.cache = cache
        self.model_ttl = model_ttl
        self.prediction_ttl = prediction_ttl

    def get_model(self, product_id: str, version: str | int) -> Any:
        """The cached model of ``product_id`` at ``version``, or ``None``."""
        value = self.cache.get(
            "model", product_id, version=version, tags=[product_tag(product_id)]
        ).value
        return None if value is MISSING else value

    def put_model(self, product_id: str, version: str | int, model: Any) -> bool:
        """Cache ``model`` (it needs a registered codec unless it is JSON-like)."""
        return self.cache.set(
            "model",
            product_id,
            model,
            ttl=self.model_ttl,
            version=version,
            tags=[product_tag(product_id)],
        )

    def get_prediction(self, product_id: str, version: str | int, params: Any) -> Any:
        """The cached prediction for ``params`` (e.g. ``{"horizon": 30}``), or ``None``."""
        value = self.cache.get(
            "prediction", [product_id, params], version=version, tags=[product_tag(product_id)]
        ).value
        return None if value is MISSING else value

    def put_prediction(
        self, product_id: str, version: str | int, params: Any, prediction: Any
    ) -> bool:
        """Cache a prediction made by model ``version`` with ``params``."""
        return self.cache.set(
            "prediction",
            [product_id, params],
            prediction,
            ttl=self.prediction_ttl,
            version=version,
            tags=[product_tag(product_id)],
        )

    def invalidate_product(self, product_id: str) -> int:
        """Make every cached model and prediction of ``product_id`` unreachable everywhere."""
        return self.cache.invalidate_tag(product_tag(product_id))
