"""Lines the Redis reliability cases measured in this run (printed at the end; quoted by docs)."""

from __future__ import annotations

REDIS_LINES: list[str] = []
