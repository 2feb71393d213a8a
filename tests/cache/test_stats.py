"""Latency histogram and counters: fixed size, percentiles within one bucket."""

from __future__ import annotations

import threading

import pytest

from salescast.cache import TieredCache
from salescast.cache.stats import LatencyHistogram, StatsRecorder, Tier

BUCKET_ERROR = 2**0.25  # four buckets per doubling


def test_percentiles_land_within_one_bucket_of_the_truth() -> None:
    histogram = LatencyHistogram()
    for _ in range(1000):
        histogram.record(0.001)
    for _ in range(100):
        histogram.record(0.1)
    assert 0.001 <= histogram.percentile(0.50) <= 0.001 * BUCKET_ERROR
    assert 0.1 <= histogram.percentile(0.95) <= 0.1 * BUCKET_ERROR
    assert histogram.percentile(0.99) == histogram.percentile(0.95)


def test_histogram_size_does_not_grow_with_samples() -> None:
    histogram = LatencyHistogram()
    for index in range(20_000):
        histogram.record(index * 1e-5)
    histogram.record(1e9)  # far beyond the last bucket: clamped, not an error
    histogram.record(0.0)
    assert len(histogram.counts) == 128
    assert histogram.total == 20_002


def test_empty_histogram_reports_zero() -> None:
    assert LatencyHistogram().percentile(0.99) == 0.0


def test_counters_are_exact_under_threads() -> None:
    recorder = StatsRecorder()

    def hit() -> None:
        for _ in range(5000):
            recorder.hit("data", Tier.L1, nbytes=10, seconds=0.0001)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = recorder.snapshot()["data"]
    assert stats.l1.hits == 40_000
    assert stats.l1.bytes_read == 400_000
    assert stats.l1.latency.count == 40_000
    assert stats.hit_rate == pytest.approx(1.0)


def test_l1_lookups_are_all_counted_and_one_in_sixteen_is_timed() -> None:
    cache = TieredCache(prefix="stats")
    cache.set("data", "k", "v", ttl=60)
    for _ in range(64):
        cache.get("data", "k")
    cache.get("data", "absent")
    stats = cache.stats().namespaces["data"]
    assert stats.l1.hits == 64
    assert stats.l1.misses == 1
    assert stats.l1.latency.count == 65
    assert stats.l1.latency.p50_ms > 0
    cache.close()
