"""MemoryBackend (L1): LRU by bytes and entries, TTL on an injected clock, thread safety."""

from __future__ import annotations

import sys
import threading

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from salescast.cache import MemoryBackend


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_least_recently_used_entry_is_evicted_first_when_entries_run_out() -> None:
    evicted: list[str] = []
    l1 = MemoryBackend(max_entries=2, on_evict=lambda key, _size: evicted.append(key))
    l1.set("a", b"1", None)
    l1.set("b", b"2", None)
    l1.get("a")  # a is now more recent than b
    l1.set("c", b"3", None)
    assert evicted == ["b"]
    assert l1.get("b") is None
    assert l1.get("a") is not None
    assert l1.usage().evictions == 1


def test_byte_budget_bounds_the_total_size() -> None:
    l1 = MemoryBackend(max_bytes=2000, max_entries=1000)
    for index in range(50):
        l1.set(f"k{index}", b"x" * 100, None)
    usage = l1.usage()
    assert usage.bytes <= 2000
    assert 0 < usage.entries < 50
    assert usage.evictions == 50 - usage.entries


def test_value_larger_than_the_budget_is_not_stored() -> None:
    l1 = MemoryBackend(max_bytes=500)
    l1.set("small", b"s", None)
    l1.set("huge", b"x" * 1000, None)
    assert l1.get("huge") is None
    assert l1.get("small") is not None


def test_ttl_runs_on_the_injected_clock() -> None:
    clock = FakeClock()
    l1 = MemoryBackend(clock=clock)
    l1.set("k", b"v", 10)
    clock.now += 9
    entry = l1.get("k")
    assert entry is not None
    assert entry.ttl == 1
    clock.now += 1
    assert l1.get("k") is None
    assert l1.usage().entries == 0


def test_concurrent_writers_keep_size_accounting_exact() -> None:
    l1 = MemoryBackend(max_bytes=50_000, max_entries=100)

    def write(worker: int) -> None:
        for index in range(500):
            l1.set(f"{worker}:{index % 150}", b"v" * (index % 40), None)
            l1.get(f"{(worker + 1) % 8}:{index % 150}")

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = l1.usage()
    assert usage.entries <= 100
    assert l1.clear() == usage.entries
    assert l1.usage().bytes == 0


def test_lock_free_readers_survive_writers_evictions_and_prefix_deletes() -> None:
    # get_object takes no lock (docs/decisions/0006): readers moving entries
    # to the end must never break a writer's eviction or a prefix delete,
    # and the byte count must stay exact.
    # Threads switch every microsecond instead of every 5 ms, so a reader
    # lands inside a writer's Python-level loop many times over.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    l1 = MemoryBackend(max_bytes=20_000, max_entries=64)
    errors: list[BaseException] = []
    stop = threading.Event()
    hits = [0]

    def read() -> None:
        try:
            while not stop.is_set():
                for index in range(100):
                    if l1.get_object(f"k{index}") is not None:
                        hits[0] += 1
        except BaseException as exc:  # the test's point: nothing may escape
            errors.append(exc)

    def write(worker: int) -> None:
        try:
            for round_ in range(40):
                for index in range(worker, 100, 3):
                    l1.set_object(f"k{index}", object(), nbytes=(index * 7) % 300, ttl=None)
                if round_ % 2 == 0:
                    l1.delete_prefix(f"k{worker}")
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    writers = [threading.Thread(target=write, args=(worker,)) for worker in range(3)]
    for thread in readers + writers:
        thread.start()
    try:
        for thread in writers:
            thread.join()
        stop.set()
        for thread in readers:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert hits[0] > 0
    usage = l1.usage()
    assert usage.entries <= 64
    assert usage.bytes <= 20_000
    assert l1.clear() == usage.entries
    assert l1.usage().bytes == 0


def test_an_expired_entry_read_without_the_lock_is_removed_and_uncharged() -> None:
    clock = FakeClock()
    l1 = MemoryBackend(clock=clock)
    l1.set_object("k", [1], nbytes=10, ttl=5)
    assert l1.get_object("k") is not None
    clock.now += 5
    assert l1.get_object("k") is None
    assert l1.usage().entries == 0
    assert l1.usage().bytes == 0


class MemoryBackendMachine(RuleBasedStateMachine):
    """Random operations keep the LRU's bounds and byte count honest."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = MemoryBackend(max_bytes=2000, max_entries=8)
        self.present: dict[str, bytes] = {}

    @rule(key=st.sampled_from("abcdefghijkl"), value=st.binary(max_size=600))
    def set_value(self, key: str, value: bytes) -> None:
        self.l1.set(key, value, None)
        self.present = {k: v for k, v in self.present.items() if k != key}
        entry = self.l1.get(key)
        if len(key) + len(value) + 96 <= 2000:
            assert entry is not None
            assert entry.value == value
            self.present[key] = value
        else:
            assert entry is None

    @rule(key=st.sampled_from("abcdefghijkl"))
    def delete_value(self, key: str) -> None:
        self.l1.delete(key)
        self.present.pop(key, None)

    @invariant()
    def bounds_hold_and_bytes_add_up(self) -> None:
        usage = self.l1.usage()
        assert usage.entries <= 8
        assert usage.bytes <= 2000
        live = {key: value for key, value in self.present.items() if self.l1.exists(key)}
        assert usage.entries == len(live)
        assert usage.bytes == sum(len(key) + len(value) + 96 for key, value in live.items())
        for key, value in live.items():
            entry = self.l1.get(key)
            assert entry is not None
            assert entry.value == value


TestMemoryBackendMachine = MemoryBackendMachine.TestCase
