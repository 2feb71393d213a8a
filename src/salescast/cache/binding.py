"""Call arguments as the decorators key them, without ``inspect.Signature.bind`` per call.

A decorated function's key holds its arguments by parameter name, with
defaults applied and ``self``/``cls`` left out. ``Signature.bind`` plus
``apply_defaults`` computes that in more time than the whole rest of an L1
hit; :class:`ArgumentBinder` gives the same mapping for plain signatures (no
``*args``, ``**kwargs`` or positional-only parameters) with a zip and a few
dict operations, and declines everything else so the caller falls back to
``bind``. Key order does not matter: the argument
hash sorts keys.
"""

from __future__ import annotations

import inspect
from typing import Any

UNKEYED = frozenset({"self", "cls"})
"""Parameters left out of keys: the instance or class a method is called on."""

_PLAIN_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class ArgumentBinder:
    """``Signature.bind(*args, **kwargs)`` + ``apply_defaults()`` for plain signatures.

    :meth:`bind` returns the argument mapping (``self``/``cls`` dropped) or
    ``None`` when the call is not the simple case (too many positionals, an
    unknown or repeated keyword, a missing required argument); ``bind``
    then gives the answer, or the ``TypeError``.
    """

    __slots__ = ("_count", "_defaults", "_keyed", "_names", "_positional")

    def __init__(self, parameters: list[inspect.Parameter]) -> None:
        self._positional = tuple(
            p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        self._names = frozenset(p.name for p in parameters)
        self._count = len(parameters)
        self._defaults = tuple(
            (p.name, p.default) for p in parameters if p.default is not inspect.Parameter.empty
        )
        self._keyed = not UNKEYED.isdisjoint(self._names)

    @classmethod
    def for_signature(cls, signature: inspect.Signature) -> ArgumentBinder | None:
        """A binder for ``signature``, or ``None`` when it is not a plain one."""
        parameters = list(signature.parameters.values())
        if any(p.kind not in _PLAIN_KINDS for p in parameters):
            return None
        return cls(parameters)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The arguments by name with defaults applied, or ``None`` (use ``bind``)."""
        positional = self._positional
        if len(args) > len(positional):
            return None
        arguments = dict(zip(positional, args, strict=False))
        if kwargs:
            names = self._names
            for name in kwargs:
                if name in arguments or name not in names:
                    return None
            arguments.update(kwargs)
        if len(arguments) < self._count:
            for name, default in self._defaults:
                if name not in arguments:
                    arguments[name] = default
            if len(arguments) < self._count:
                return None
        if self._keyed:
            for name in UNKEYED:
                arguments.pop(name, None)
        return arguments
