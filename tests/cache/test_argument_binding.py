"""Decorator keys without Signature.bind: same digests as bind, remembered only when safe."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from salescast.cache import CacheSource, TieredCache, cached, hash_arguments
from salescast.cache.binding import ArgumentBinder

MakeCache = Callable[..., TieredCache]


def reference_digest(function: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The key digest as the decorators computed it before the fast path."""
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
    return hash_arguments([f"{function.__module__}.{function.__qualname__}", arguments])


def plain(product_id: str, horizon: int = 30, *, interval: float = 0.8) -> None: ...


def flexible(product_id: str, *rest: int, **options: str) -> None: ...


def positional_only(product_id: str, /, horizon: int = 30) -> None: ...


CALLS: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    (plain, ("p1",), {}),
    (plain, ("p1", 30), {}),
    (plain, ("p1",), {"horizon": 30}),
    (plain, (), {"horizon": 7, "product_id": "p1"}),
    (plain, ("p1", 7), {"interval": 0.9}),
    (plain, ("p1",), {"interval": 0.5, "horizon": 1}),
    (flexible, ("p1", 1, 2), {"a": "b"}),
    (flexible, ("p1",), {}),
    (positional_only, ("p1",), {}),
    (positional_only, ("p1", 3), {}),
]


@pytest.mark.parametrize(("function", "args", "kwargs"), CALLS)
def test_decorated_calls_use_the_same_entry_as_bind_would(
    make_cache: MakeCache,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    cache = make_cache()
    decorated = cached(namespace="data", ttl=60, cache=cache)(function)
    decorated(*args, **kwargs)
    digest = reference_digest(function, *args, **kwargs)
    found = cache.get_or_compute_hashed("data", digest, lambda: "recomputed", ttl=60)
    assert found.source is CacheSource.HIT_L1


def test_the_fast_binder_agrees_with_bind_or_declines() -> None:
    binder = ArgumentBinder.for_signature(inspect.signature(plain))
    assert binder is not None
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("p1",), {}),
        (("p1", 3), {"interval": 0.1}),
        ((), {"product_id": "p"}),
    ]
    for args, kwargs in cases:
        bound = inspect.signature(plain).bind(*args, **kwargs)
        bound.apply_defaults()
        assert binder.bind(args, kwargs) == dict(bound.arguments)
    assert binder.bind(("p1", 1, 2), {}) is None  # too many: bind raises the TypeError
    assert binder.bind(("p1",), {"product_id": "p2"}) is None  # given twice
    assert binder.bind(("p1",), {"colour": "red"}) is None  # unknown keyword
    assert binder.bind((), {}) is None  # a required argument is missing
    assert ArgumentBinder.for_signature(inspect.signature(flexible)) is None
    assert ArgumentBinder.for_signature(inspect.signature(positional_only)) is None


def test_calls_that_do_not_fit_the_signature_raise_type_error(make_cache: MakeCache) -> None:
    decorated = cached(namespace="data", ttl=60, cache=make_cache())(plain)
    with pytest.raises(TypeError):
        decorated("p1", 1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        decorated()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        decorated("p1", colour="red")  # type: ignore[call-arg]


def test_equal_arguments_of_different_types_never_share_an_entry(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls: list[object] = []

    @cached(namespace="data", ttl=60, cache=cache)
    def f(value: object) -> str:
        calls.append(value)
        return repr(value)

    values: list[object] = [1, True, 1.0, 0.0, -0.0, 0, False, None, "1"]
    values += [dt.date(2024, 5, 1), dt.datetime(2024, 5, 1, tzinfo=dt.UTC)]
    values += [dt.datetime(2024, 5, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))]
    for value in values:
        assert f(value) == repr(value)
        assert f(value) == repr(value)  # the second call is a hit, of its own entry
    assert [repr(value) for value in calls] == [repr(value) for value in values]


def test_remembered_digests_match_freshly_computed_ones(make_cache: MakeCache) -> None:
    cache = make_cache()

    @cached(namespace="data", ttl=60, cache=cache)
    def f(product_id: str, horizon: int = 30, interval: float = 0.8) -> int:
        return horizon

    for _ in range(3):  # first call computes the digest, the others remember it
        f("p1", 7, interval=0.5)
    digest = reference_digest(f.__wrapped__, "p1", 7, interval=0.5)  # type: ignore[attr-defined]
    assert cache.get_or_compute_hashed("data", digest, lambda: -1, ttl=60).value == 7
