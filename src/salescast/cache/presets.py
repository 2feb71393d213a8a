"""The named presets of ``@cached``: ``@cached_model`` (6 h) and ``@cached_prediction`` (1 h).

Each preset repeats ``cached``'s overloads (with and without parentheses)
with its own namespace and default TTL: the overloads are what type checkers
read, so they cannot be generated at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar, overload

from salescast.cache.decorators import CachedFunction, cached
from salescast.cache.tiered import TieredCache

P = ParamSpec("P")
R = TypeVar("R")

MODEL_TTL_SECONDS = 21600.0
PREDICTION_TTL_SECONDS = 3600.0


@overload
def cached_model(func: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached_model(
    func: None = None,
    /,
    *,
    ttl: float = MODEL_TTL_SECONDS,
    cache: TieredCache | None = None,
    version: Callable[..., Any] | None = None,
    tags: Callable[..., Iterable[str]] | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cached_model(
    func: Callable[P, R] | None = None,
    /,
    *,
    ttl: float = MODEL_TTL_SECONDS,
    cache: TieredCache | None = None,
    version: Callable[..., Any] | None = None,
    tags: Callable[..., Iterable[str]] | None = None,
) -> CachedFunction[P, R] | Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """``@cached`` with namespace ``model`` and a 6-hour TTL."""
    decorator: Callable[[Callable[P, R]], CachedFunction[P, R]] = cached(
        namespace="model", ttl=ttl, cache=cache, version=version, tags=tags
    )
    return decorator(func) if func is not None else decorator


@overload
def cached_prediction(func: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached_prediction(
    func: None = None,
    /,
    *,
    ttl: float = PREDICTION_TTL_SECONDS,
    cache: TieredCache | None = None,
    version: Callable[..., Any] | None = None,
    tags: Callable[..., Iterable[str]] | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cached_prediction(
    func: Callable[P, R] | None = None,
    /,
    *,
    ttl: float = PREDICTION_TTL_SECONDS,
    cache: TieredCache | None = None,
    version: Callable[..., Any] | None = None,
    tags: Callable[..., Iterable[str]] | None = None,
) -> CachedFunction[P, R] | Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """``@cached`` with namespace ``prediction`` and a 1-hour TTL."""
    decorator: Callable[[Callable[P, R]], CachedFunction[P, R]] = cached(
        namespace="prediction", ttl=ttl, cache=cache, version=version, tags=tags
    )
    return decorator(func) if func is not None else decorator
