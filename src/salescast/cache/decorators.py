"""Decorators that cache a function's results in a TieredCache: @cached and friends."""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

from salescast.cache import tiered_async
from salescast.cache.binding import UNKEYED, ArgumentBinder
from salescast.cache.keys import check_namespace, hash_arguments
from salescast.cache.lookup import MISSING, CacheSource, Lookup, Missing, last_cache_source
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

# Read once: an enum member looked up on its class costs a tenth of a microsecond.
_HIT_L1 = CacheSource.HIT_L1

_default_lock = threading.Lock()
_default_cache: TieredCache | None = None


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
        # (cache, memo key -> full entry key) for calls without version/tags.
        self._plain_keys: tuple[TieredCache | None, dict[tuple[Any, ...], str]] = (None, {})

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

        A call's digest is remembered only under a memo key (see
        ``_memo_key``) for which equal memo keys mean identical canonical
        encodings, so the remembered digest is exactly the one hashing
        would give (``f(1)``, ``f(True)``, ``f(1.0)`` stay apart).
        """
        memo = _memo_key(args, kwargs)
        if memo is None:
            return hash_arguments(self.key(args, kwargs))
        digest = self._digests.get(memo)
        if digest is None:
            digest = hash_arguments(self.key(args, kwargs))
            if len(self._digests) >= _DIGEST_MEMO_LIMIT:
                self._digests.clear()
            self._digests[memo] = digest
        return digest

    def plain_key(self, cache: TieredCache, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The full entry key in ``cache`` of a call without ``version``/``tags``.

        Such a key depends only on the arguments and the cache's prefix, so
        it is remembered per cache like the digest (a ``configure()`` that
        swaps the default cache starts a new memo).
        """
        owner, keys = self._plain_keys
        if owner is not cache:
            keys = {}
            self._plain_keys = (cache, keys)
        memo = _memo_key(args, kwargs)
        if memo is None:
            return cache.keys.entry_key(self.namespace, hash_arguments(self.key(args, kwargs)))
        entry_key = keys.get(memo)
        if entry_key is None:
            entry_key = cache.keys.entry_key(self.namespace, self.digest(args, kwargs))
            if len(keys) >= _DIGEST_MEMO_LIMIT:
                keys.clear()
            keys[memo] = entry_key
        return entry_key

    def version(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.version_of(*args, **kwargs) if self.version_of is not None else None

    def tags(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
        return tuple(self.tags_of(*args, **kwargs)) if self.tags_of is not None else ()

    def peek(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.cache().peek_hashed(
            self.namespace,
            self.digest(args, kwargs),
            version=self.version(args, kwargs),
            tags=self.tags(args, kwargs),
        )

    def lookup(
        self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Lookup[Any]:
        return self.cache().get_or_compute_hashed(
            self.namespace,
            self.digest(args, kwargs),
            lambda: function(*args, **kwargs),
            ttl=self.ttl,
            version=self.version(args, kwargs),
            tags=self.tags(args, kwargs),
        )

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

    def prime(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return self.cache().set(
            self.namespace,
            self.key(args, kwargs),
            value,
            ttl=self.ttl,
            version=self.version(args, kwargs),
            tags=self.tags(args, kwargs),
        )

    async def aprime(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return await self.cache().aset(
            self.namespace,
            self.key(args, kwargs),
            value,
            ttl=self.ttl,
            version=self.version(args, kwargs),
            tags=self.tags(args, kwargs),
        )


def _sync_wrapper(function: Callable[P, R], spec: _CallSpec) -> CachedFunction[P, R]:
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

    def lookup(*args: P.args, **kwargs: P.kwargs) -> Lookup[R]:
        return spec.lookup(function, args, kwargs)

    def invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
        return spec.invalidate(args, kwargs)

    async def ainvalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
        return await spec.ainvalidate(args, kwargs)

    def peek(*args: P.args, **kwargs: P.kwargs) -> Any:
        return spec.peek(args, kwargs)

    def prime(value: Any, /, *args: P.args, **kwargs: P.kwargs) -> bool:
        return spec.prime(value, args, kwargs)

    async def aprime(value: Any, /, *args: P.args, **kwargs: P.kwargs) -> bool:
        return await spec.aprime(value, args, kwargs)

    wrapper.lookup = lookup  # type: ignore[attr-defined]
    wrapper.invalidate = invalidate  # type: ignore[attr-defined]
    wrapper.ainvalidate = ainvalidate  # type: ignore[attr-defined]
    wrapper.peek = peek  # type: ignore[attr-defined]
    wrapper.prime = prime  # type: ignore[attr-defined]
    wrapper.aprime = aprime  # type: ignore[attr-defined]
    return cast(CachedFunction[P, R], wrapper)


def _async_wrapper(
    function: Callable[P, Awaitable[Any]], spec: _CallSpec
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
            found = await tiered_async.alookup_below_l1(
                cache, namespace, entry_key, lambda: function(*args, **kwargs), ttl, (), False
            )
            return found.value
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

    def peek(*args: P.args, **kwargs: P.kwargs) -> Any:
        return spec.peek(args, kwargs)

    def prime(value: Any, /, *args: P.args, **kwargs: P.kwargs) -> bool:
        return spec.prime(value, args, kwargs)

    async def aprime(value: Any, /, *args: P.args, **kwargs: P.kwargs) -> bool:
        return await spec.aprime(value, args, kwargs)

    wrapper.invalidate = invalidate  # type: ignore[attr-defined]
    wrapper.ainvalidate = ainvalidate  # type: ignore[attr-defined]
    wrapper.peek = peek  # type: ignore[attr-defined]
    wrapper.prime = prime  # type: ignore[attr-defined]
    wrapper.aprime = aprime  # type: ignore[attr-defined]
    return wrapper


def _memo_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """A key under which a call's digest may be remembered, or ``None``.

    Only calls whose arguments are all exact ``str``, ``int``, ``bool``,
    ``float``, ``date`` or ``None`` have one, and it carries their types,
    since ``1 == True == 1.0`` would otherwise share an entry. (``date``
    qualifies; ``datetime`` does not: aware datetimes in different zones are
    equal but encode differently.) Zero floats have none: ``0.0 == -0.0``
    encode differently. Positional ``str`` arguments alone, the common
    case, are their own memo key: no typed tuple can equal them.
    """
    if not kwargs:
        for value in args:
            if type(value) is not str:
                break
        else:
            return args
        values = args
        types = tuple(map(type, args))
        memo: tuple[Any, ...] = (types, args)
    else:
        values = args + tuple(kwargs.values())
        types = tuple(map(type, values))
        memo = (types, values, tuple(kwargs))
    if _SCALARS.issuperset(types) and (float not in types or 0.0 not in values):
        return memo
    return None
