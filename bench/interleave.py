"""Side-by-side timing: candidates run in interleaved blocks, one median per candidate.

On a shared 2-core machine absolute times drift by tens of percent within a
minute, so candidates are never timed one after the other. Each block runs
every candidate once (``calls`` calls each, in a rotated order), and a
candidate's figure is the median over blocks of its mean time per call.
Ratios between candidates come from the same blocks, so drift mostly cancels.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median block, and the fastest and slowest blocks."""

    median: float
    low: float
    high: float
    blocks: int
    samples: tuple[float, ...] = ()

    @property
    def micros(self) -> float:
        return self.median * 1e6

    @property
    def millis(self) -> float:
        return self.median * 1e3


def _summary(samples: list[float]) -> Timing:
    return Timing(
        statistics.median(samples), min(samples), max(samples), len(samples), tuple(samples)
    )


def paired_difference(candidate: Timing, baseline: Timing) -> float:
    """Median over blocks of ``candidate - baseline`` (seconds per call), block by block.

    Both ran in the same blocks, one right after the other, so each block's
    difference sees the same machine; the median of those differences is
    steadier than the difference of two medians when the baseline itself
    swings by more than the overhead being measured.
    """
    pairs = list(zip(candidate.samples, baseline.samples, strict=True))
    return statistics.median(mine - base for mine, base in pairs)


@dataclass(frozen=True)
class PairedCalls:
    """``candidate - baseline`` in seconds per call: the median of the per-pair
    differences and a 95 % confidence interval of that median."""

    median: float
    low: float
    high: float
    pairs: int

    def verdict(self, at_most: float) -> bool | None:
        """``True`` if the whole interval is within ``at_most``, ``False`` if none of
        it is, ``None`` if the measurement cannot tell."""
        if self.high <= at_most:
            return True
        if self.low > at_most:
            return False
        return None


def paired_calls(
    candidate: Callable[[], object], baseline: Callable[[], object], *, pairs: int
) -> PairedCalls:
    """Time ``candidate`` and ``baseline`` call by call, alternately.

    For a difference far smaller than the calls' own swing (a few
    microseconds on a 300 us Redis round trip): each pair runs the two calls
    back to back, so both see the same moment of the machine, and which one
    goes first alternates, so neither profits from the other's warm caches.
    The interval is the distribution-free one of a median (the order
    statistics n/2 -+ 1.96 sqrt(n)/2 of the sorted differences).
    """
    clock = time.perf_counter
    differences: list[float] = []
    for index in range(pairs):
        swapped = index % 2 == 1
        first, second = (baseline, candidate) if swapped else (candidate, baseline)
        started = clock()
        first()
        middle = clock()
        second()
        ended = clock()
        mine, base = (
            (ended - middle, middle - started) if swapped else (middle - started, ended - middle)
        )
        differences.append(mine - base)
    return _paired_summary(differences)


async def apaired_calls(
    candidate: Callable[[], Awaitable[object]],
    baseline: Callable[[], Awaitable[object]],
    *,
    pairs: int,
) -> PairedCalls:
    """As :func:`paired_calls` for coroutine functions, each awaited in turn."""
    clock = time.perf_counter
    differences: list[float] = []
    for index in range(pairs):
        swapped = index % 2 == 1
        first, second = (baseline, candidate) if swapped else (candidate, baseline)
        started = clock()
        await first()
        middle = clock()
        await second()
        ended = clock()
        mine, base = (
            (ended - middle, middle - started) if swapped else (middle - started, ended - middle)
        )
        differences.append(mine - base)
    return _paired_summary(differences)


def _paired_summary(differences: list[float]) -> PairedCalls:
    differences.sort()
    count = len(differences)
    spread = 1.96 * math.sqrt(count) / 2
    low = differences[max(0, math.floor(count / 2 - spread))]
    high = differences[min(count - 1, math.ceil(count / 2 + spread))]
    return PairedCalls(statistics.median(differences), low, high, count)


def _rotated(names: list[str], block: int) -> list[str]:
    shift = block % len(names)
    return names[shift:] + names[:shift]


def time_blocks(
    candidates: Mapping[str, Callable[[], object]],
    *,
    blocks: int,
    calls: int | Mapping[str, int],
) -> dict[str, Timing]:
    """Per-call time of each candidate; ``calls`` may differ per candidate (slow ones: 1)."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for block in range(blocks):
        for name in _rotated(list(candidates), block):
            count = calls if isinstance(calls, int) else calls[name]
            call = candidates[name]
            started = time.perf_counter()
            for _ in range(count):
                call()
            samples[name].append((time.perf_counter() - started) / count)
    return {name: _summary(values) for name, values in samples.items()}


async def atime_blocks(
    candidates: Mapping[str, Callable[[], Awaitable[object]]],
    *,
    blocks: int,
    calls: int | Mapping[str, int],
) -> dict[str, Timing]:
    """As :func:`time_blocks` for coroutine functions, awaited one after the other."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for block in range(blocks):
        for name in _rotated(list(candidates), block):
            count = calls if isinstance(calls, int) else calls[name]
            call = candidates[name]
            started = time.perf_counter()
            for _ in range(count):
                await call()
            samples[name].append((time.perf_counter() - started) / count)
    return {name: _summary(values) for name, values in samples.items()}


def run_async(coroutine: Awaitable[dict[str, Timing]]) -> dict[str, Timing]:
    """Run one timing coroutine on a fresh event loop."""

    async def main() -> dict[str, Timing]:
        return await coroutine

    return asyncio.run(main())


def ratio(slow: float, fast: float) -> str:
    """``slow / fast`` as ``1,234x``."""
    if fast <= 0:
        return "n/a"
    value = slow / fast
    return f"{value:,.1f}x" if value < 10 else f"{value:,.0f}x"


def fmt_seconds(seconds: float) -> str:
    """Seconds in the unit that reads best: s, ms or µs."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def calls_for(
    candidates: Mapping[str, Callable[[], object]], *, budget_seconds: float, cap: int = 5000
) -> dict[str, int]:
    """Calls per block so each candidate's block lasts about ``budget_seconds`` (at least 1).

    Each candidate is called twice first: the first call warms it (fills the
    cache under test, imports, connections), the second is the estimate.
    """
    counts: dict[str, int] = {}
    for name, call in candidates.items():
        call()
        started = time.perf_counter()
        call()
        once = max(time.perf_counter() - started, 1e-7)
        counts[name] = max(1, min(cap, int(budget_seconds / once)))
    return counts


async def acalls_for(
    candidates: Mapping[str, Callable[[], Awaitable[object]]],
    *,
    budget_seconds: float,
    cap: int = 10_000,
) -> dict[str, int]:
    """As :func:`calls_for` for coroutine functions."""
    counts: dict[str, int] = {}
    for name, call in candidates.items():
        await call()
        started = time.perf_counter()
        for _ in range(10):
            await call()
        once = max((time.perf_counter() - started) / 10, 1e-7)
        counts[name] = max(1, min(cap, int(budget_seconds / once)))
    return counts
