"""Helpers for a two-worker server: reach both workers, sum their statistics."""

from __future__ import annotations

from typing import Any

import httpx

FRESH = {"Connection": "close"}


def by_worker(
    base_url: str, path: str = "/cache/stats", *, want: int = 2, tries: int = 400
) -> dict[int, dict[str, Any]]:
    """`path`'s answer from each worker (by pid), asked on fresh connections until `want` did."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(tries):
        response = httpx.get(f"{base_url}{path}", headers=FRESH, timeout=10)
        if response.status_code == 200:
            body = response.json()
            seen[body["worker"]["pid"]] = body
        if len(seen) >= want:
            break
    return seen


def stats_by_worker(base_url: str, *, want: int = 2) -> dict[int, dict[str, Any]]:
    return by_worker(base_url, "/cache/stats", want=want)


def status_by_worker(base_url: str, *, want: int = 2) -> dict[int, dict[str, Any]]:
    return by_worker(base_url, "/cache/status", want=want)


def computations(stats: dict[int, dict[str, Any]], namespace: str = "prediction") -> int:
    return sum(
        body["namespaces"].get(namespace, {}).get("computations", 0) for body in stats.values()
    )
