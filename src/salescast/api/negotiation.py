"""Which representation of a forecast a request's `Accept` header asks for.

The forecast route offers JSON (the default), PNG, SVG and CSV. The best
match wins by quality (`q`), the most specific media range deciding each
type's quality (`image/png` over `image/*` over `*/*`); ties go to the
order offered, JSON first, so a browser's `text/html,...,*/*;q=0.8` gets
JSON, as `curl` (`*/*`) and a client that sends no `Accept` do. A header
accepting none of them is answered 406 by the caller. The header is found
in the ASGI scope's raw list (a `Headers` lookup costs several times more)
and parsed headers are remembered (clients send the same few), so the warm
JSON path pays a short scan and a dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Representation = Literal["json", "png", "svg", "csv"]
REPRESENTATIONS: tuple[Representation, ...] = ("json", "png", "svg", "csv")
MEDIA_TYPES: dict[Representation, str] = {
    "json": "application/json",
    "png": "image/png",
    "svg": "image/svg+xml",
    "csv": "text/csv",
}

_known: dict[bytes, Representation | None] = {b"*/*": "json", b"application/json": "json"}
_KNOWN_LIMIT = 256


def accepted_representation(headers: Iterable[tuple[bytes, bytes]]) -> Representation | None:
    """The representation the `Accept` header(s) of raw ASGI `headers` (names lowercase,
    as ASGI has them) prefer, JSON when there is none; None when they accept none."""
    accept: bytes | None = None
    for name, value in headers:
        if name == b"accept":  # several Accept headers read as one, comma-joined
            accept = value if accept is None else accept + b"," + value
    if accept is None:
        return "json"
    if accept in _known:
        return _known[accept]
    chosen = _negotiate(accept.decode("latin-1"))
    if len(_known) >= _KNOWN_LIMIT:  # bounded: a client may send any header it likes
        _known.clear()
    _known[accept] = chosen
    return chosen


def _negotiate(accept: str) -> Representation | None:
    ranges = [parsed for part in accept.split(",") if (parsed := _media_range(part)) is not None]
    best: Representation | None = None
    best_quality = 0.0
    for representation in REPRESENTATIONS:
        quality = _quality(MEDIA_TYPES[representation], ranges)
        if quality > best_quality:
            best, best_quality = representation, quality
    return best


def _media_range(part: str) -> tuple[str, str, float] | None:
    """`(type, subtype, q)` of one `Accept` element; None when it is not one."""
    media, *params = (piece.strip() for piece in part.split(";"))
    kind, slash, subtype = media.lower().partition("/")
    if not slash or not kind or not subtype:
        return None
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                return None
            if not 0 <= quality <= 1:
                return None
    return kind, subtype, quality


def _quality(media_type: str, ranges: list[tuple[str, str, float]]) -> float:
    """The quality of `media_type` under its most specific matching range (0: none)."""
    kind, _, subtype = media_type.partition("/")
    best_specificity, quality = -1, 0.0
    for range_kind, range_subtype, range_quality in ranges:
        if range_kind == kind and range_subtype == subtype:
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif range_kind == "*" and range_subtype == "*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, quality = specificity, range_quality
    return quality
