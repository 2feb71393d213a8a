"""Which forecast representation an Accept header picks (the rules in api/negotiation.py)."""

from __future__ import annotations

import pytest

from salescast.api.negotiation import accepted_representation


def accept(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"x"), *((b"accept", v.encode()) for v in values), (b"user-agent", b"t")]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"host", b"x")], "json"),  # no Accept at all
        (accept("*/*"), "json"),
        (accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), "json"),
        (accept("image/png"), "png"),
        (accept("image/*"), "png"),  # the first image offered
        (accept("image/svg+xml, image/png;q=0.9"), "svg"),
        (accept("application/json;q=0.5, text/csv"), "csv"),
        (accept("TEXT/CSV"), "csv"),  # media types are case-insensitive
        (accept("image/*;q=0.9, image/png;q=0.1"), "svg"),  # the specific range decides png
        (accept("text/html", "image/svg+xml"), "svg"),  # two headers read as one
        (accept("*/*;q=0.1, application/json;q=0"), "png"),
        (accept("text/html"), None),
        (accept("image/png;q=0"), None),
        (accept("image/png;q=abc"), None),  # a malformed element is ignored
        (accept("nonsense"), None),
    ],
)
def test_the_best_offered_representation_wins(
    headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    assert accepted_representation(headers) == expected
    assert accepted_representation(headers) == expected  # and the remembered answer agrees
