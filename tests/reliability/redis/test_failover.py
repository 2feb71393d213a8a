"""Failover under load on two workers: a Redis Cluster master, then a Sentinel master, killed.

`salescast serve --workers 2` on a copy of the trained demo store, its shared
tier on the session's 6-node cluster or master + replica + 3 sentinels
(tests/support/topology_fixtures.py; healed after each test). The forecasts of
three products are warm in both workers' L1; the load loop reads them on 4
threads while a writer flips one product's active version between 1 and 2
every 0.4 s (each product every 1.2 s), before, during and after the
failover. Then a master is killed and its replica promoted. What must hold:

* no failed request: every answer 200 (the loop sends no If-None-Match);
* no stale forecast (staleness.py: the active version when the read was sent,
  or one a change in flight set);
* L2 serving again within 10 s of the promotion. A warm key proves nothing
  (both workers answer it from L1), so the probe asks for a key nobody asked
  before (a fresh `interval` of a fourth product, whose version stays put)
  on fresh connections until one answer is
  `X-Cache: HIT-L2`: one worker computed it and wrote it to Redis, the other
  (whose L1 lacks it) read it back. On the cluster the probed product's slot
  lives on the killed master, so the hit is the promoted replica serving;
* `/cache/status` on both workers: the cluster writable with every master
  answering; under Sentinel the new master named, writable.

Under Sentinel the old master is then restarted; it believes it is a master
until the sentinels demote it (about 10 s). Meanwhile fresh keys keep being
written: L2 sets must keep rising with no L2 error, and `/cache/status` must
never say writable while writes fail.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from redis.crc import key_slot

from tests.reliability.redis.figures import REDIS_LINES
from tests.reliability.redis.load import LoadLoop, Outcome
from tests.reliability.redis.staleness import ADMIN, Change, activate, violations
from tests.reliability.redis.workers import FRESH, stats_by_worker, status_by_worker
from tests.reliability.servers import server_env
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_sentinel import RedisSentinelSet
from tests.support.uvicorn_server import UvicornServer

PRODUCTS = ["CA_1-FOODS_3", "CA_3-FOODS_3", "WI_3-FOODS_2"]  # read by the load, flipped
PROBED = "TX_2-HOUSEHOLD_1"  # fresh keys only, on version 2 throughout
HORIZONS = [7, 8, 9, 10, 11]
BEFORE_SECONDS = 2.0  # steady load before the kill
AFTER_SECONDS = 3.0  # steady load after everything is back
L2_BACK_WITHIN = 10.0
CHANGE_EVERY = 0.4
LEASE_TTL = 10.0  # TieredCache's default lease_ttl: the most a request waits on another's


def path_of(i: int) -> str:
    return f"/products/{PRODUCTS[i % len(PRODUCTS)]}/forecast?horizon={HORIZONS[i % 5]}"


@pytest.fixture
def cache_prefix() -> str:
    """The topologies serve the whole session: a prefix of this test's own."""
    return f"failover-{uuid.uuid4().hex[:8]}"


def serve(database_url: str, cache_prefix: str, **redis_env: str) -> Iterator[UvicornServer]:
    env = server_env(database_url, SALESCAST_CACHE_PREFIX=cache_prefix, **redis_env)
    with UvicornServer(env, workers=2) as running:
        assert len(status_by_worker(running.url)) == 2
        for product in [*PRODUCTS, PROBED]:  # a second version (to flip back and forth to)
            trained = httpx.post(
                f"{running.url}/products/{product}/train", headers=ADMIN, timeout=120
            )
            assert trained.status_code == 201, trained.text
        yield running


@pytest.fixture
def cluster_server(
    demo_database_url: str, redis_cluster: RedisCluster, cache_prefix: str
) -> Iterator[UvicornServer]:
    yield from serve(
        demo_database_url, cache_prefix, SALESCAST_REDIS_CLUSTER_NODES=redis_cluster.nodes_setting
    )


@pytest.fixture
def sentinel_server(
    demo_database_url: str, redis_sentinels: RedisSentinelSet, cache_prefix: str
) -> Iterator[UvicornServer]:
    yield from serve(
        demo_database_url,
        cache_prefix,
        SALESCAST_REDIS_SENTINELS=redis_sentinels.sentinels_setting,
        SALESCAST_REDIS_SENTINEL_MASTER=redis_sentinels.master_name,
    )


# -- helpers ---------------------------------------------------------------------------


def warm_both_workers(base_url: str, *, tries: int = 2_000) -> None:
    """Until 2 x keys requests in a row are L1 hits: every key in both workers' L1."""
    keys = len(PRODUCTS) * len(HORIZONS)
    streak = 0
    with httpx.Client(timeout=60, headers=FRESH) as client:
        for i in range(tries):
            response = client.get(base_url + path_of(i))
            assert response.status_code == 200, response.text
            streak = streak + 1 if response.headers.get("x-cache") == "HIT-L1" else 0
            if streak >= 2 * keys:
                return
    raise AssertionError("the workers' L1 did not warm up")


class Writer:
    """A thread flipping the products' active versions (2 → 1 → 2 ...) every `CHANGE_EVERY` s."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.changes: list[Change] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        for i in itertools.count():
            if self._stop.wait(CHANGE_EVERY):
                return
            product = PRODUCTS[i % len(PRODUCTS)]
            try:
                self.changes.append(activate(self.base_url, product, 1 + (i // 3) % 2))
            except (AssertionError, httpx.HTTPError) as exc:  # reported by the test
                self.errors.append(exc)


class Prober:
    """Fresh keys of one product (a new `interval` each), to see L2 serve what L1 lacks."""

    def __init__(self, base_url: str, product: str) -> None:
        self.base_url = base_url
        self.product = product
        self.outcomes: list[Outcome] = []
        self._counter = itertools.count(1)

    def l2_serves(self, tries: int = 8) -> bool:
        """One fresh key asked up to `tries` times on fresh connections: a HIT-L2 among them?"""
        interval = f"0.{500_000 + next(self._counter):06d}"
        path = f"/products/{self.product}/forecast?horizon=14&interval={interval}"
        with httpx.Client(timeout=30, headers=FRESH) as client:
            for _ in range(tries):
                outcome = self._get(client, path)
                self.outcomes.append(outcome)
                if outcome.cache == "HIT-L2":
                    return True
        return False

    def hits_during(self, seconds: float) -> tuple[int, int]:
        """Fresh keys probed for `seconds`: (served from L2, probed)."""
        hits = probed = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            hits += self.l2_serves()
            probed += 1
        return hits, probed

    def seconds_until_l2_serves(self, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.l2_serves():
                return time.monotonic() - started
            time.sleep(0.05)
        return float("inf")

    def _get(self, client: httpx.Client, path: str) -> Outcome:
        started = time.monotonic()
        try:
            response = client.get(self.base_url + path)
            status, cache = response.status_code, response.headers.get("x-cache", "")
            body = response.json() if status == 200 else None
        except httpx.HTTPError:
            status, body, cache = 0, None, ""
        return Outcome(path, status, started, time.monotonic(), body, cache)


@dataclass
class Counters:
    """Both workers' L2 sets and errors (every namespace) and breaker counters, at one moment."""

    l2_sets: int = 0
    l2_errors: int = 0
    breaker_failures: int = 0
    breaker_opened: int = 0
    breaker_states: list[str] = field(default_factory=list)


def counters(base_url: str) -> Counters:
    workers = stats_by_worker(base_url)
    assert len(workers) == 2
    total = Counters()
    for body in workers.values():
        for namespace in body["namespaces"].values():
            total.l2_sets += namespace["l2"]["sets"]
            total.l2_errors += namespace["l2"]["errors"]
        total.breaker_failures += body["breaker"]["failures"]
        total.breaker_opened += body["breaker"]["opened"]
        total.breaker_states.append(body["breaker"]["state"])
    return total


def leases_from_before_the_kill(client: Any, prefix: str, down_for: float) -> list[float]:
    """Seconds left on the computation leases (our prefix) a promoted master inherited: those
    with less TTL left than one taken after the promotion could have. Their holders computed
    when the old master died and could neither store their value nor release the lease."""
    left = [client.pttl(key) / 1000 for key in client.scan_iter(f"{prefix}:_lease:*", count=1000)]
    return [seconds for seconds in left if 0 < seconds < LEASE_TTL - down_for]


def seconds_until(condition: Any, timeout: float, interval: float = 0.1) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(interval)
    return float("inf")


def cluster_status_ok(base_url: str) -> bool:
    """Both workers: topology cluster, writable, three masters and every one answering."""
    workers = status_by_worker(base_url)
    if len(workers) != 2:
        return False
    for status in workers.values():
        masters = [n for n in status["redis_nodes"] or [] if n["role"] == "master"]
        if not (
            status["redis_topology"] == "cluster"
            and status["redis_writable"] is True
            and status["breaker_state"] == "closed"
            and len(masters) == 3
            and all(n["answers"] for n in masters)
        ):
            return False
    return True


def sentinel_status_ok(base_url: str, master: tuple[str, int]) -> bool:
    """Both workers: topology sentinel, writable, naming `master`."""
    workers = status_by_worker(base_url)
    return len(workers) == 2 and all(
        status["redis_topology"] == "sentinel"
        and status["redis_writable"] is True
        and status["breaker_state"] == "closed"
        and f"{master[0]}:{master[1]}" in (status["redis_url"] or "")
        for status in workers.values()
    )


@dataclass
class Summary:
    outcomes: list[Outcome]
    stale: list[Outcome]
    failed: list[Outcome]
    changes: int
    killed: float

    def line(self) -> str:
        worst = max(self.outcomes, key=lambda o: o.seconds)
        slow = sum(o.seconds >= 1.0 for o in self.outcomes)
        return (
            f"{len(self.outcomes)} requests, {len(self.failed)} failed, {len(self.stale)} stale "
            f"during {self.changes} version changes, worst {worst.seconds * 1000:.0f} ms (sent "
            f"{worst.started - self.killed:+.1f} s from the kill, {worst.cache}), {slow} took "
            ">= 1 s"
        )


def summarize(load: LoadLoop, prober: Prober, writer: Writer, killed: float) -> Summary:
    outcomes = [*load.outcomes, *prober.outcomes]
    return Summary(
        outcomes=outcomes,
        stale=violations(outcomes, writer.changes, initial=2),
        failed=[o for o in outcomes if o.status != 200],
        changes=len(writer.changes),
        killed=killed,
    )


def assert_held(summary: Summary, writer: Writer, l2_back: float) -> None:
    assert writer.errors == [], writer.errors[:3]
    assert summary.failed == [], [(o.path, o.status) for o in summary.failed[:5]]
    assert summary.stale == [], [(o.path, o.body) for o in summary.stale[:3]]
    assert l2_back <= L2_BACK_WITHIN
    assert len(summary.outcomes) > 200


def load_loop(base_url: str) -> LoadLoop:
    return LoadLoop(base_url, path_of, threads=4, max_requests=50_000, max_seconds=90)


# -- the cases -------------------------------------------------------------------------


@pytest.mark.chaos
def test_a_cluster_master_killed_under_load_fails_no_request_and_l2_comes_back(
    cluster_server: UvicornServer, redis_cluster: RedisCluster, cache_prefix: str
) -> None:
    base = cluster_server.url
    product = PROBED
    # The master holding this product's slot (keys.py: the hash tag is {prefix:product:id}).
    slot = key_slot(f"{cache_prefix}:product:{product}".encode())
    victim = redis_cluster.master_of_slot(slot).port
    warm_both_workers(base)
    prober = Prober(base, product)
    assert prober.l2_serves(), "L2 does not serve before the failover"
    with redis_cluster.client(victim) as node:
        assert list(node.scan_iter(match=f"{cache_prefix}:prediction:*{product}*", count=1000))
    before = counters(base)
    with load_loop(base) as load, Writer(base) as writer:
        time.sleep(BEFORE_SECONDS + 0.5)
        killed = time.monotonic()
        redis_cluster.kill_master(victim)
        new_master = redis_cluster.wait_for_failover(victim)
        promoted = time.monotonic()
        with redis_cluster.client(new_master) as node:
            leases = leases_from_before_the_kill(node, cache_prefix, promoted - killed)
        l2_back = prober.seconds_until_l2_serves(timeout=L2_BACK_WITHIN + 5)
        status_back = seconds_until(lambda: cluster_status_ok(base), timeout=15)
        hits_after = prober.hits_during(AFTER_SECONDS)
    after = counters(base)
    summary = summarize(load, prober, writer, killed)
    REDIS_LINES.append(
        f"cluster failover: {summary.line()}; master {victim} killed, replica {new_master} "
        f"promoted after {promoted - killed:.2f} s, inheriting {inherited(leases)}; L2 serving "
        f"again (HIT-L2 on a key new to L1) {l2_back:.2f} s after the promotion; status "
        "writable with 3 masters "
        f"answering {status_back:.2f} s after that; then {hits_after[0]} of {hits_after[1]} "
        f"fresh keys served from L2; {after.breaker_opened - before.breaker_opened} breaker "
        f"openings, {after.breaker_failures - before.breaker_failures} breaker failures, "
        f"{after.l2_errors - before.l2_errors} L2 errors (both workers)"
    )
    assert_held(summary, writer, l2_back)
    assert hits_after[0] > 0
    assert status_back < 15, status_by_worker(base)
    assert after.breaker_states == ["closed", "closed"]


@pytest.mark.chaos
def test_a_sentinel_master_killed_under_load_fails_no_request_and_l2_comes_back(
    sentinel_server: UvicornServer, redis_sentinels: RedisSentinelSet, cache_prefix: str
) -> None:
    base = sentinel_server.url
    warm_both_workers(base)
    prober = Prober(base, PROBED)
    assert prober.l2_serves(), "L2 does not serve before the failover"
    before = counters(base)
    samples: list[tuple[float, dict[int, dict[str, Any]], Counters]] = []
    old_master_keys: list[int] = []
    with load_loop(base) as load, Writer(base) as writer:
        time.sleep(BEFORE_SECONDS + 0.5)
        killed = time.monotonic()
        old = redis_sentinels.kill_master()
        new = redis_sentinels.wait_for_failover(old)
        promoted = time.monotonic()
        with redis_sentinels.data_client(new) as node:
            leases = leases_from_before_the_kill(node, cache_prefix, promoted - killed)
        l2_back = prober.seconds_until_l2_serves(timeout=L2_BACK_WITHIN + 5)
        status_back = seconds_until(lambda: sentinel_status_ok(base, new), timeout=15)

        # The old master returns believing it is a master, until the sentinels demote it.
        at_return = counters(base)
        hits_before_demotion = 0
        restarted = time.monotonic()
        restart = threading.Thread(target=redis_sentinels.restart_old_master, daemon=True)
        restart.start()
        while restart.is_alive() and time.monotonic() - restarted < 45:
            hits_before_demotion += prober.l2_serves()
            samples.append((time.monotonic(), status_by_worker(base), counters(base)))
            old_master_keys.append(keys_on_a_master(redis_sentinels, old))
            time.sleep(0.2)
        restart.join(5)
        demoted = time.monotonic()
        at_demotion = counters(base)
        hits_after = prober.hits_during(AFTER_SECONDS)
        samples.append((time.monotonic(), status_by_worker(base), counters(base)))
    after = counters(base)
    summary = summarize(load, prober, writer, killed)
    statuses = [status for _, workers, _ in samples for status in workers.values()]
    unwritable = [s for s in statuses if s["redis_writable"] is not True]
    wrong_master = [s for s in statuses if f"{new[0]}:{new[1]}" not in (s["redis_url"] or "")]
    split_brain_keys = max(old_master_keys, default=0)
    REDIS_LINES.append(
        f"sentinel failover: {summary.line()}; master {old[1]} killed, replica {new[1]} "
        f"promoted after {promoted - killed:.2f} s, inheriting {inherited(leases)}; L2 serving "
        f"again (HIT-L2 on a key new to L1) {l2_back:.2f} s after the promotion; status "
        f"naming the new master, writable, {status_back:.2f} s after that; old master "
        f"restarted, demoted after {demoted - restarted:.1f} s: meanwhile L2 sets "
        f"+{at_demotion.l2_sets - at_return.l2_sets}, L2 errors "
        f"+{at_demotion.l2_errors - at_return.l2_errors}, {hits_before_demotion} of "
        f"{len(samples) - 1} fresh keys served from L2, {len(statuses)} statuses "
        f"({len(unwritable)} not writable, {len(wrong_master)} not naming the new master), "
        f"at most {split_brain_keys} keys on the old master while it answered as one; "
        f"then {hits_after[0]} of {hits_after[1]} fresh keys from L2; "
        f"{after.breaker_opened - before.breaker_opened} breaker openings, "
        f"{after.breaker_failures - before.breaker_failures} breaker failures, "
        f"{after.l2_errors - before.l2_errors} L2 errors in all (both workers)"
    )
    assert_held(summary, writer, l2_back)
    assert status_back < 15, status_by_worker(base)
    assert not restart.is_alive(), "the old master was not demoted"
    # Writes kept succeeding while the old master came back and was demoted ...
    assert at_demotion.l2_sets > at_return.l2_sets
    assert after.l2_sets > at_demotion.l2_sets
    assert at_demotion.l2_errors == at_return.l2_errors
    assert after.l2_errors == at_demotion.l2_errors
    assert hits_before_demotion > 0
    assert hits_after[0] > 0
    # ... and the status said so: writable, the new master, never a write failing meanwhile.
    assert unwritable == [], unwritable[:2]
    assert wrong_master == [], wrong_master[:2]
    assert split_brain_keys == 0
    assert after.breaker_states == ["closed", "closed"]


def inherited(leases: list[float]) -> str:
    if not leases:
        return "no lease from before the kill"
    return f"{len(leases)} leases from before the kill (expiring {max(leases):.1f} s later)"


def keys_on_a_master(sentinels: RedisSentinelSet, address: tuple[str, int]) -> int:
    """DBSIZE of `address` while it says it is a master (0 when it is a replica or down)."""
    try:
        with sentinels.data_client(address) as client:
            if client.execute_command("ROLE")[0] != "master":
                return 0
            size = int(client.dbsize())
            return size if client.execute_command("ROLE")[0] == "master" else 0
    except redis.RedisError:
        return 0
