"""@cached, @cached_model, @cached_prediction on plain and async functions."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import pytest

from salescast.cache import (
    CacheSource,
    TieredCache,
    cached,
    cached_model,
    cached_prediction,
    configure,
    get_default_cache,
    last_cache_source,
)

MakeCache = Callable[..., TieredCache]


@pytest.fixture
def cache(make_cache: MakeCache) -> Iterator[TieredCache]:
    cache = make_cache()
    configure(cache)
    yield cache
    configure(None)


def test_decorator_works_without_parentheses(cache: TieredCache) -> None:
    calls: list[str] = []

    @cached_prediction
    def predict_sales(product_id: str, horizon: int = 30) -> dict[str, object]:
        calls.append(product_id)
        return {"product_id": product_id, "horizon": horizon}

    assert predict_sales("p1") == {"product_id": "p1", "horizon": 30}
    assert predict_sales("p1", 30) == {"product_id": "p1", "horizon": 30}
    assert predict_sales(product_id="p1", horizon=30)["horizon"] == 30
    assert calls == ["p1"]
    assert last_cache_source.get() is CacheSource.HIT_L1
    assert "prediction" in cache.stats().namespaces
    assert predict_sales.__name__ == "predict_sales"


def test_model_and_prediction_decorators_use_their_namespaces_and_ttls(
    cache: TieredCache,
) -> None:
    @cached_model
    def load_model(product_id: str) -> str:
        return "model"

    @cached_prediction()
    def predict(product_id: str) -> str:
        return "prediction"

    load_model("p1")
    predict("p1")
    assert cache.l2 is not None
    model_key = cache.entry_key(
        "model", [f"{__name__}.{load_model.__qualname__}", {"product_id": "p1"}]
    )
    entry = cache.l2.get(model_key)
    assert entry is not None
    assert entry.ttl is not None
    assert 21500 < entry.ttl <= 21600
    assert set(cache.stats().namespaces) == {"model", "prediction"}


def test_none_and_bytes_results_are_cached_by_decorators(cache: TieredCache) -> None:
    calls: list[int] = []

    @cached(namespace="data", ttl=60)
    def nothing(n: int) -> None:
        calls.append(n)

    @cached(namespace="data", ttl=60)
    def raw(n: int) -> bytes:
        calls.append(n)
        return b"\x00" * n

    nothing(1)
    nothing(1)
    assert raw(3) == b"\x00\x00\x00"
    assert cache.l1 is not None
    cache.l1.clear()
    assert raw(3) == b"\x00\x00\x00"
    assert last_cache_source.get() is CacheSource.HIT_L2
    assert calls == [1, 3]


def test_invalidate_drops_one_entry_only(cache: TieredCache) -> None:
    calls: list[int] = []

    @cached(namespace="data", ttl=60)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    square(2)
    square(3)
    assert square.invalidate(2) is True
    square(2)
    square(3)
    assert calls == [2, 3, 2]


def test_version_and_tags_callables_shape_the_key(cache: TieredCache) -> None:
    versions = {"p1": 1}
    calls: list[str] = []

    @cached(
        namespace="prediction",
        ttl=60,
        version=lambda product_id: versions[product_id],
        tags=lambda product_id: [f"product:{product_id}"],
    )
    def forecast(product_id: str) -> str:
        calls.append(product_id)
        return f"{product_id}@{versions[product_id]}"

    assert forecast("p1") == "p1@1"
    versions["p1"] = 2
    assert forecast("p1") == "p1@2"
    assert forecast("p1") == "p1@2"
    cache.invalidate_tag("product:p1")
    assert forecast("p1") == "p1@2"
    assert calls == ["p1", "p1", "p1"]


def test_explicit_cache_wins_over_the_configured_one(
    cache: TieredCache, make_cache: MakeCache
) -> None:
    other = make_cache(url=None)

    @cached(namespace="data", ttl=60, cache=other)
    def value() -> int:
        return 1

    value()
    assert "data" in other.stats().namespaces
    assert "data" not in cache.stats().namespaces


def test_a_remembered_key_follows_the_configured_cache(make_cache: MakeCache) -> None:
    # Decorated calls without version/tags remember their full key per cache:
    # swapping the default cache with configure() must not reuse the old
    # cache's keys (they carry its prefix).
    first = make_cache(url=None, prefix="first")
    second = make_cache(url=None, prefix="second")
    calls: list[str] = []

    @cached(namespace="data", ttl=60)
    def value(name: str) -> str:
        calls.append(name)
        return name.upper()

    configure(first)
    assert value("a") == "A"
    assert value("a") == "A"
    configure(second)
    assert value("a") == "A"
    assert value("a") == "A"
    configure(None)
    assert calls == ["a", "a"]
    assert first.stats().namespaces["data"].l1.hits == 1
    assert second.stats().namespaces["data"].l1.hits == 1
    assert [key.startswith("second:") for key in _l1_keys(second)] == [True]


def test_equal_arguments_of_other_types_stay_apart(cache: TieredCache) -> None:
    # The memo of remembered keys must not confuse "1", 1, True and 1.0.
    calls: list[object] = []

    @cached(namespace="data", ttl=60, cache=cache)
    def echo(value: object) -> str:
        calls.append(value)
        return repr(value)

    for value in ("1", 1, True, 1.0, "1", 1, True, 1.0):
        assert echo(value) == repr(value)
    assert calls == ["1", 1, True, 1.0]


def _l1_keys(cache: TieredCache) -> list[str]:
    assert cache.l1 is not None
    return list(cache.l1._data)


def test_without_configure_an_in_process_cache_is_used() -> None:
    configure(None)

    @cached(namespace="data", ttl=60)
    def value() -> int:
        return 7

    assert value() == 7
    assert value() == 7
    default = get_default_cache()
    assert default.l2 is None
    assert default.stats().namespaces["data"].l1.hits == 1
    default.close()
    configure(None)


@pytest.mark.anyio
async def test_async_functions_are_cached_and_stay_coroutine_functions(
    cache: TieredCache,
) -> None:
    calls: list[str] = []

    @cached(namespace="data", ttl=60, tags=lambda product_id: [f"product:{product_id}"])
    async def sales_history(product_id: str) -> list[dict[str, int]]:
        calls.append(product_id)
        return [{"day": 1, "qty": 3}]

    assert inspect.iscoroutinefunction(sales_history)
    assert await sales_history("p1") == [{"day": 1, "qty": 3}]
    assert last_cache_source.get() is CacheSource.MISS
    assert await sales_history("p1") == [{"day": 1, "qty": 3}]
    assert last_cache_source.get() is CacheSource.HIT_L1
    assert cache.l1 is not None
    cache.l1.clear()
    assert await sales_history("p1") == [{"day": 1, "qty": 3}]
    assert last_cache_source.get() is CacheSource.HIT_L2
    assert sales_history.invalidate("p1") is True
    await sales_history("p1")
    assert calls == ["p1", "p1"]
    await cache.aclose()


@pytest.mark.anyio
async def test_ainvalidate_drops_the_entry_without_blocking_the_loop(cache: TieredCache) -> None:
    calls: list[int] = []

    @cached(namespace="data", ttl=60)
    async def square(n: int) -> int:
        calls.append(n)
        return n * n

    await square(4)
    assert await square.ainvalidate(4) is True
    assert await square.ainvalidate(4) is False
    await square(4)
    assert calls == [4, 4]
    await cache.aclose()


@pytest.mark.anyio
async def test_async_none_results_are_cached(cache: TieredCache) -> None:
    calls: list[int] = []

    @cached_model
    async def missing_model(product_id: str) -> None:
        calls.append(1)

    assert await missing_model("p1") is None
    assert await missing_model("p1") is None
    assert calls == [1]
    await cache.aclose()


def test_methods_are_keyed_without_self(cache: TieredCache) -> None:
    calls: list[str] = []

    class Service:
        def __init__(self, name: str) -> None:
            self.name = name

        @cached(namespace="data", ttl=60)
        def history(self, product_id: str) -> str:
            calls.append(self.name)
            return product_id

        def load(self, product_id: str) -> str:
            calls.append(f"load by {self.name}")
            return product_id

    assert Service("a").history("p1") == "p1"
    assert Service("b").history("p1") == "p1"  # same arguments: shared entry
    load = cached(namespace="model", ttl=60)(Service("c").load)  # a bound method
    assert load("p2") == "p2"
    assert load(product_id="p2") == "p2"
    assert calls == ["a", "load by c"]


def test_unhashable_arguments_raise_a_clear_type_error(cache: TieredCache) -> None:
    @cached(namespace="data", ttl=60)
    def f(thing: object) -> int:
        return 1

    with pytest.raises(TypeError, match="cache key"):
        f(object())


def test_prime_stores_the_entry_the_next_call_reads_in_every_process(
    cache: TieredCache, make_cache: MakeCache
) -> None:
    calls: list[tuple[str, int]] = []
    other = make_cache()  # another worker: its own L1, the same Redis and prefix

    def load(product_id: str, version: int, value: str = "computed") -> str:
        calls.append((product_id, version))
        return value

    here = cached_model(ttl=60, tags=_product_tags)(load)
    there = cached_model(ttl=60, cache=other, tags=_product_tags)(load)
    assert here.prime("primed", "p1", 2) is True
    assert here("p1", 2) == "primed"
    assert last_cache_source.get() is CacheSource.HIT_L1
    assert here("p1", version=2, value="computed") == "primed"  # defaults bound as on a call
    assert there("p1", 2) == "primed"
    assert last_cache_source.get() is CacheSource.HIT_L2
    assert here("p1", 1) == "computed"  # other arguments, other entry
    assert calls == [("p1", 1)]
    assert cache.stats().namespaces["model"].computations == 1


def test_prime_before_a_tag_invalidation_is_unreachable_after_it(cache: TieredCache) -> None:
    calls: list[str] = []

    @cached(namespace="model", ttl=60, tags=lambda product_id: [f"product:{product_id}"])
    def load(product_id: str) -> str:
        calls.append(product_id)
        return "computed"

    load.prime("too early", "p1")
    cache.invalidate_tag("product:p1")
    assert load("p1") == "computed"
    load.prime("after", "p1")
    assert load("p1") == "after"
    assert calls == ["p1"]


def test_prime_of_a_plain_function_is_read_by_its_remembered_key(cache: TieredCache) -> None:
    calls: list[int] = []

    @cached(namespace="data", ttl=60)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    assert square(3) == 9  # remembers the full key of square(3)
    assert square.prime(10, 3) is True
    assert square(3) == 10
    assert square.prime(16, 4) is True
    assert square(4) == 16
    assert calls == [3]


def test_prime_refuses_a_value_it_cannot_encode(cache: TieredCache) -> None:
    @cached(namespace="data", ttl=60)
    def value(name: str) -> object:
        return name

    assert value.prime(object(), "a") is False
    assert value("a") == "a"


@pytest.mark.anyio
async def test_aprime_stores_without_blocking_the_loop(cache: TieredCache) -> None:
    calls: list[str] = []

    @cached(namespace="prediction", ttl=60, tags=lambda product_id: [f"product:{product_id}"])
    async def forecast(product_id: str) -> str:
        calls.append(product_id)
        return "computed"

    assert await forecast.aprime("primed", "p1") is True
    assert cache.l1 is not None
    cache.l1.clear()  # the entry reached Redis too
    assert await forecast("p1") == "primed"
    assert last_cache_source.get() is CacheSource.HIT_L2
    assert calls == []
    await cache.aclose()


def _product_tags(product_id: str, *_args: object, **_kwargs: object) -> list[str]:
    return [f"product:{product_id}"]


def test_lookup_says_which_tier_answered(make_cache: MakeCache) -> None:
    writer, reader = make_cache(), make_cache()
    calls: list[int] = []

    def square(x: int) -> int:
        calls.append(x)
        return x * x

    on_writer = cached(namespace="sq", ttl=60, cache=writer)(square)
    on_reader = cached(namespace="sq", ttl=60, cache=reader)(square)
    assert on_writer.lookup(3) == (9, CacheSource.MISS)
    assert on_writer.lookup(3) == (9, CacheSource.HIT_L1)
    assert on_reader.lookup(3) == (9, CacheSource.HIT_L2)
    assert on_reader(3) == 9
    assert calls == [3]
