"""What a lookup returns: the value and which tier served it."""

from __future__ import annotations

from contextvars import ContextVar
from enum import StrEnum
from typing import Final, Generic, NamedTuple, TypeVar

T_co = TypeVar("T_co", covariant=True)


class CacheSource(StrEnum):
    """Who answered, spelled as the HTTP ``X-Cache`` header wants it."""

    HIT_L1 = "HIT-L1"
    HIT_L2 = "HIT-L2"
    MISS = "MISS"


class Lookup(NamedTuple, Generic[T_co]):
    """``(value, source)``; unpacks as a tuple: ``value, source = cache.get_or_compute(...)``."""

    value: T_co
    source: CacheSource


class Missing:
    """The type of ``MISSING``, the "no value" sentinel, so ``None`` can be a cached value."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing()

last_cache_source: ContextVar[CacheSource | None] = ContextVar(
    "salescast_last_cache_source", default=None
)
"""The source of the last cached call made in this context (thread or asyncio task).

Set by every ``get_or_compute`` and decorated call. An HTTP handler reads it
right after calling a cached function::

    forecast = predict_sales(product_id, horizon)
    response.headers["X-Cache"] = last_cache_source.get() or "MISS"

A decorated ``async def`` awaited directly runs in the caller's context, so
the value is visible to the caller; a sync function run in a thread pool sets
it in that thread's context copy (read it there).
"""
