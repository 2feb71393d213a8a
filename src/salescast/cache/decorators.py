"""``@cached``: a function's results in a TieredCache, for plain and ``async def`` functions.

The call key (bound arguments and its memoized digest) is ``call_keys.py``'s,
the default cache ``default_cache.py``'s, the named presets
(``@cached_model``, ``@cached_prediction``) ``presets.py``'s. The plain and
the ``async`` wrapper read alike on purpose: each inlines its hit path (an
L1 hit is one dict read away, with no call to a shared helper), and what
both offer beside the call is attached once by ``_attach_operations``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

from salescast.cache.call_keys import CallSpec
from salescast.cache.default_cache import get_default_cache
from salescast.cache.keys import check_namespace
from salescast.cache.lookup import MISSING, CacheSource, Lookup, Missing, last_cache_source
from salescast.cache.tiered import TieredCache

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

# Read once: an enum member looked up on its class costs a tenth of a microsecond.
_HIT_L1 = CacheSource.HIT_L1


class CachedFunction(Protocol[P, R_co]):
    """A cached function: call it as before; ``invalidate`` drops one entry."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Call through the cache."""
        ...

    def lookup(self, *args: P.args, **kwargs: P.kwargs) -> Lookup[R_co]:
        """As a call, but says who answered: ``(value, HIT-L1|HIT-L2|MISS)``.

        Plain (non-``async``) functions only; the same entry as a call.
        """
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the entry these arguments would read, in every process."""
        ...

    def peek(self, *args: P.args, **kwargs: P.kwargs) -> R_co | Missing:
        """The L1 value for these arguments, or ``MISSING``: no I/O, no computation.

        Calls ``version``/``tags`` (they must not do I/O either to keep that
        promise); see ``TieredCache.peek``.
        """
        ...

    async def ainvalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """As ``invalidate``, without blocking the event loop."""
        ...

    # ``value`` is ``object``: R_co is covariant, so it cannot type a parameter.
    def prime(self, value: object, /, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Store ``value`` as the result of a call with these arguments, in both tiers.

        The entry is the one such a call would read: same key, ``version``,
        ``tags`` (under their generations as known now) and TTL, so the next
        call hits without computing. For write-through after the caller
        produced the value some other way (a model it just trained). Call it
        only after whatever ``version``/``tags`` depend on is committed and
        invalidated, or the entry is unreachable at once. The value is shared,
        not copied, like a computed result. ``False`` when it could not be
        encoded (nothing is stored); a Redis failure still stores in L1.
        """
        ...

    async def aprime(self, value: object, /, *args: P.args, **kwargs: P.kwargs) -> bool:
        """As ``prime``, without blocking the event loop."""
        ...


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
        spec = CallSpec(function, namespace, ttl, cache, version, tags)
        if inspect.iscoroutinefunction(function):
            return cast(CachedFunction[P, R], _async_wrapper(function, spec))
        return _sync_wrapper(function, spec)

    if func is not None:
        return decorate(func)
    return decorate


def _sync_wrapper(function: Callable[P, R], spec: CallSpec) -> CachedFunction[P, R]:
    namespace, ttl = spec.namespace, spec.ttl
    version_of, tags_of = spec.version_of, spec.tags_of

    plain = version_of is None and tags_of is None

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # Every line here runs on each L1 hit: no Lookup, no keyword parsing.
        cache = spec.fixed_cache
        if cache is None:
            cache = get_default_cache()
        if plain:
            # No version or tags: the full key is remembered, and an L1 hit
            # is one dict read away.
            entry_key = spec.plain_key(cache, args, kwargs)
            if cache.l1 is not None:
                hit: R = cache.io.read_l1(namespace, entry_key)
                if hit is not MISSING:
                    last_cache_source.set(_HIT_L1)
                    return hit
            result, _ = cache._lookup_below_l1(
                namespace, entry_key, lambda: function(*args, **kwargs), ttl, (), False
            )
            return result
        value, _ = cache._lookup_hashed(
            namespace,
            spec.digest(args, kwargs),
            lambda: function(*args, **kwargs),
            ttl,
            None if version_of is None else version_of(*args, **kwargs),
            () if tags_of is None else tuple(tags_of(*args, **kwargs)),
        )
        return value

    _attach_operations(wrapper, function, spec)
    return cast(CachedFunction[P, R], wrapper)


def _async_wrapper(
    function: Callable[P, Awaitable[Any]], spec: CallSpec
) -> Callable[P, Awaitable[Any]]:
    namespace, ttl = spec.namespace, spec.ttl
    plain = spec.version_of is None and spec.tags_of is None

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if plain:  # as in _sync_wrapper: an L1 hit is one dict read away
            cache = spec.cache()
            entry_key = spec.plain_key(cache, args, kwargs)
            if cache.l1 is not None:
                hit = cache.io.read_l1(namespace, entry_key)
                if hit is not MISSING:
                    last_cache_source.set(_HIT_L1)
                    return hit
            result, _ = await cache.aflow.lookup_below_l1(
                namespace, entry_key, lambda: function(*args, **kwargs), ttl, (), False
            )
            return result
        value, _ = await spec.cache().aflow.lookup_hashed(
            namespace,
            spec.digest(args, kwargs),
            lambda: function(*args, **kwargs),
            ttl,
            spec.version(args, kwargs),
            spec.tags(args, kwargs),
        )
        return value

    _attach_operations(wrapper, function, spec)
    return wrapper


def _attach_operations(
    wrapper: Callable[..., Any], function: Callable[..., Any], spec: CallSpec
) -> None:
    # What every cached function offers beside the call, plain or async.
    def lookup(*args: Any, **kwargs: Any) -> Lookup[Any]:
        cache = spec.cache()
        return cache.get_or_compute_hashed(
            spec.namespace,
            spec.digest(args, kwargs),
            lambda: function(*args, **kwargs),
            ttl=spec.ttl,
            version=spec.version(args, kwargs),
            tags=spec.tags(args, kwargs),
        )

    def peek(*args: Any, **kwargs: Any) -> Any:
        return spec.cache().peek_hashed(
            spec.namespace,
            spec.digest(args, kwargs),
            version=spec.version(args, kwargs),
            tags=spec.tags(args, kwargs),
        )

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        cache, key, version, tags = _entry_of(spec, args, kwargs)
        return cache.delete(spec.namespace, key, version=version, tags=tags)

    async def ainvalidate(*args: Any, **kwargs: Any) -> bool:
        cache, key, version, tags = _entry_of(spec, args, kwargs)
        return await cache.adelete(spec.namespace, key, version=version, tags=tags)

    def prime(value: Any, /, *args: Any, **kwargs: Any) -> bool:
        cache, key, version, tags = _entry_of(spec, args, kwargs)
        return cache.set(spec.namespace, key, value, ttl=spec.ttl, version=version, tags=tags)

    async def aprime(value: Any, /, *args: Any, **kwargs: Any) -> bool:
        cache, key, version, tags = _entry_of(spec, args, kwargs)
        return await cache.aset(
            spec.namespace, key, value, ttl=spec.ttl, version=version, tags=tags
        )

    if not inspect.iscoroutinefunction(function):
        wrapper.lookup = lookup  # type: ignore[attr-defined]
    wrapper.peek = peek  # type: ignore[attr-defined]
    wrapper.invalidate = invalidate  # type: ignore[attr-defined]
    wrapper.ainvalidate = ainvalidate  # type: ignore[attr-defined]
    wrapper.prime = prime  # type: ignore[attr-defined]
    wrapper.aprime = aprime  # type: ignore[attr-defined]


def _entry_of(
    spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[TieredCache, list[Any], Any, tuple[str, ...]]:
    return spec.cache(), spec.key(args, kwargs), spec.version(args, kwargs), spec.tags(args, kwargs)
