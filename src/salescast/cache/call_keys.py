"""Call keys of decorated functions: bound arguments, their memoized digest, the entry key."""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from salescast.cache.binding import UNKEYED, ArgumentBinder
from salescast.cache.default_cache import get_default_cache
from salescast.cache.keys import hash_arguments
from salescast.cache.tiered import TieredCache

# Distinct argument tuples whose digests one decorated function remembers.
_DIGEST_MEMO_LIMIT = 4096
# Exact types (not subclasses) whose equal values always encode identically
# once the type is part of the memo key (``1 == True == 1.0`` otherwise).
# (``datetime.date`` qualifies; ``datetime`` does not: aware datetimes in
# different zones are equal but encode differently.)
_SCALARS = frozenset({str, int, bool, float, type(None), datetime.date})


class CallSpec:
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
