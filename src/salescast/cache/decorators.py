"""Decorators that cache a function's results in a TieredCache: @cached and friends."""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

from salescast.cache.binding import UNKEYED, ArgumentBinder
from salescast.cache.keys import check_namespace, hash_arguments
from salescast.cache.tiered import TieredCache

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

logger = logging.getLogger("salescast.cache")

MODEL_TTL_SECONDS = 21600.0
PREDICTION_TTL_SECONDS = 3600.0

# Distinct argument tuples whose digests one decorated function remembers.
_DIGEST_MEMO_LIMIT = 4096
# Exact types (not subclasses) whose equal values always encode identically
# once the type is part of the memo key (``1 == True == 1.0`` otherwise).
# (``datetime.date`` qualifies; ``datetime`` does not: aware datetimes in
# different zones are equal but encode differently.)
_SCALARS = frozenset({str, int, bool, float, type(None), datetime.date})

_default_lock = threading.Lock()
_default_cache: TieredCache | None = None


class CachedFunction(Protocol[P, R_co]):
    """A cached function: call it as before; ``invalidate`` drops one entry."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Call through the cache."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the entry these arguments would read, in every process."""
        ...

    async def ainvalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """As ``invalidate``, without blocking the event loop."""
        ...


def configure(cache: TieredCache | None) -> None:
    """Make ``cache`` the one decorators use when they name none (``None`` resets)."""
    global _default_cache
    with _default_lock:
        _default_cache = cache


def get_default_cache() -> TieredCache:
    """The configured cache; an in-process-only one if ``configure`` was never called."""
    global _default_cache
    cache = _default_cache  # read once: the hit path takes no lock
    if cache is not None:
        return cache
    with _default_lock:
        if _default_cache is None:
            logger.info("no cache configured; using an in-process cache (no Redis tier)")
            _default_cache = TieredCache(prefix="salescast")
        return _default_cache


@overload
def cached(func: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached(
    func: None = None,
    /,
    *,
    namespace: str = "default",
    ttl: float | None = None,
    cache: TieredCache | None = None,
    version: Callable[..., Any] | None = None,
    tags: Callable[..., Iterable[str]] | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cached(
    func: Callable[P, R] | None = None,
    /,
    *,
    namespace: str = "default",
    ttl: float | None = None,
    cache: TieredCache | None = None,
    version: Callable[..., Any] | None = None,
    tags: Callable[..., Iterable[str]] | None = None,
) -> CachedFunction[P, R] | Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Cache results of a plain or ``async def`` function, with or without parentheses.

    - The key is the function's qualified name plus its bound arguments
      (defaults applied, so ``f("p1")`` and ``f("p1", 30)`` share an entry
      when 30 is the default); ``self``/``cls`` are left out.
    - ``ttl`` in seconds (``None``: until evicted or invalidated).
    - ``version(*args, **kwargs)`` returns the durable version(s) the result
      depends on; it is part of the key, so a new version never reads old
      entries. ``tags(*args, **kwargs)`` returns the entry's tags (e.g.
      ``["product:p1"]``) for ``cache.invalidate_tag``.
    - ``None`` and ``bytes`` results are cached like any other.
    - Results are shared, not copied: every L1 hit returns the same object
      (the first call's own result, in the process that computed it), so
      callers must not mutate what the function returns.
    - ``cache``: the TieredCache to use; default: the one given to
      ``configure()``, looked up at call time.
    """
    check_namespace(namespace)

    def decorate(function: Callable[P, R]) -> CachedFunction[P, R]:
        spec = _CallSpec(function, namespace, ttl, cache, version, tags)
        if inspect.iscoroutinefunction(function):
            return cast(CachedFunction[P, R], _async_wrapper(function, spec))
        return _sync_wrapper(function, spec)

    if func is not None:
        return decorate(func)
    return decorate


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


class _CallSpec:
    """What a decorated function needs at each call: key digest, version, tags, cache."""

    def __init__(
        self,
        function: Callable[..., Any],
        namespace: str,
        ttl: float | None,
        cache: TieredCache | None,
        version: Callable[..., Any] | None,
        tags: Callable[..., Iterable[str]] | None,
    ) -> None:
        self.name = f"{function.__module__}.{function.__qualname__}"
        self.signature = inspect.signature(function)
        self.binder = ArgumentBinder.for_signature(self.signature)
        self.namespace = namespace
        self.ttl = ttl
        self.fixed_cache = cache
        self.version_of = version
        self.tags_of = tags
        # Argument tuple -> digest, for calls whose arguments are plain
        # scalars (see ``digest``): hashing them again would give the same
        # digest, and skipping it is most of the cost of an L1 hit.
        self._digests: dict[tuple[Any, ...], str] = {}

    def cache(self) -> TieredCache:
        return self.fixed_cache if self.fixed_cache is not None else get_default_cache()

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        arguments = self.binder.bind(args, kwargs) if self.binder is not None else None
        if arguments is None:
            # Anything the fast binder does not handle, including calls that
            # do not fit the signature (``bind`` raises the usual TypeError).
            bound = self.signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = {
                name: value for name, value in bound.arguments.items() if name not in UNKEYED
            }
        return [self.name, arguments]

    def digest(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """``hash_arguments(self.key(args, kwargs))``, remembered for scalar arguments.

        A call's digest is remembered only when every argument is an exact
        ``str``, ``int``, ``bool``, ``float``, ``date`` or ``None`` and the memo key
        carries their types: for those, equal memo keys mean identical
        canonical encodings, so the remembered digest is exactly the one
        hashing would give (``f(1)``, ``f(True)``, ``f(1.0)`` stay apart).
        Zero floats are not remembered: ``0.0 == -0.0`` encode differently.
        """
        if kwargs:
            values = args + tuple(kwargs.values())
            types = tuple(map(type, values))
            memo: tuple[Any, ...] = (types, values, tuple(kwargs))
        else:
            values = args
            types = tuple(map(type, args))
            memo = (types, args)
        if _SCALARS.issuperset(types) and (float not in types or 0.0 not in values):
            digest = self._digests.get(memo)
            if digest is None:
                digest = hash_arguments(self.key(args, kwargs))
                if len(self._digests) >= _DIGEST_MEMO_LIMIT:
                    self._digests.clear()
                self._digests[memo] = digest
            return digest
        return hash_arguments(self.key(args, kwargs))

    def version(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.version_of(*args, **kwargs) if self.version_of is not None else None

    def tags(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
        return tuple(self.tags_of(*args, **kwargs)) if self.tags_of is not None else ()

    def invalidate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return self.cache().delete(
            self.namespace,
            self.key(args, kwargs),
            version=self.version(args, kwargs),
            tags=self.tags(args, kwargs),
        )

    async def ainvalidate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return await self.cache().adelete(
            self.namespace,
            self.key(args, kwargs),
            version=self.version(args, kwargs),
            tags=self.tags(args, kwargs),
        )


def _sync_wrapper(function: Callable[P, R], spec: _CallSpec) -> CachedFunction[P, R]:
    namespace, ttl = spec.namespace, spec.ttl
    version_of, tags_of = spec.version_of, spec.tags_of

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # Every line here runs on each L1 hit: no Lookup, no keyword parsing.
        cache = spec.fixed_cache
        if cache is None:
            cache = get_default_cache()
        value, _ = cache._lookup_hashed(
            namespace,
            spec.digest(args, kwargs),
            lambda: function(*args, **kwargs),
            ttl,
            None if version_of is None else version_of(*args, **kwargs),
            () if tags_of is None else tuple(tags_of(*args, **kwargs)),
        )
        return value

    def invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
        return spec.invalidate(args, kwargs)

    async def ainvalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
        return await spec.ainvalidate(args, kwargs)

    wrapper.invalidate = invalidate  # type: ignore[attr-defined]
    wrapper.ainvalidate = ainvalidate  # type: ignore[attr-defined]
    return cast(CachedFunction[P, R], wrapper)


def _async_wrapper(
    function: Callable[P, Awaitable[Any]], spec: _CallSpec
) -> Callable[P, Awaitable[Any]]:
    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        lookup = await spec.cache().aget_or_compute_hashed(
            spec.namespace,
            spec.digest(args, kwargs),
            lambda: function(*args, **kwargs),
            ttl=spec.ttl,
            version=spec.version(args, kwargs),
            tags=spec.tags(args, kwargs),
        )
        return lookup.value

    def invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
        return spec.invalidate(args, kwargs)

    async def ainvalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
        return await spec.ainvalidate(args, kwargs)

    wrapper.invalidate = invalidate  # type: ignore[attr-defined]
    wrapper.ainvalidate = ainvalidate  # type: ignore[attr-defined]
    return wrapper
