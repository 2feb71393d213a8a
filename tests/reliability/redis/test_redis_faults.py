"""Redis faults under load on two workers: killed, frozen, restarted, squeezed, disconnected.

For each fault: requests sent, non-2xx answers, worst latency while the
fault lasts and how many requests took a socket timeout or more, the p99 of
the same load just before the fault (the harness's own latency on this
machine, side by side) and while the breakers are open (or the fault lasts),
and the time from Redis's return until both workers use it again
(reachable, breaker closed). Figures are printed at the end of the run;
wall-clock bounds asserted here are generous safety nets, the measured
figures go to docs/reliability.md.

Watching the breakers must not feed them: `/cache/status` asks Redis for
INFO through the breaker (a frozen Redis makes each ask a failure that helps
open it), so the breakers are watched on `/cache/stats`, which does no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import ADMIN_TOKEN
from tests.reliability.redis.figures import REDIS_LINES
from tests.reliability.redis.load import LoadLoop, Outcome, percentile
from tests.reliability.redis.workers import FRESH, stats_by_worker, status_by_worker
from tests.reliability.servers import server_env
from tests.support.redis_server import RedisServer
from tests.support.uvicorn_server import UvicornServer

PRODUCTS = ["CA_1-FOODS_3", "CA_3-FOODS_3", "WI_3-FOODS_2", "TX_2-HOUSEHOLD_1"]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}", **FRESH}
FAULT_SECONDS = 3.0
BEFORE_SECONDS = 2.0  # load with Redis healthy before each fault: the baseline p99
SOCKET_TIMEOUT = 0.25  # the service's default Redis socket timeout


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[RedisServer], None]
    recover: Callable[[RedisServer], None]
    opens_breaker: bool = False  # Redis stops answering: the breakers must open


def _raw(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=5)


def _command(server: RedisServer, *args: str) -> None:
    client = _raw(server)
    try:
        client.execute_command(*args)
    finally:
        client.close()


def _restart_empty(server: RedisServer) -> None:
    server.kill()
    for dump in Path(server._dir).glob("*.rdb"):  # no snapshot: comes back empty
        dump.unlink()
    server.start()


FAULTS = {
    "killed": Fault("killed", lambda s: s.kill(), lambda s: s.start(), opens_breaker=True),
    "frozen (SIGSTOP)": Fault(
        "frozen (SIGSTOP)", lambda s: s.freeze(), lambda s: s.thaw(), opens_breaker=True
    ),
    "restarted empty": Fault("restarted empty", lambda s: None, _restart_empty),
    "maxmemory 200kb allkeys-lru": Fault(
        "maxmemory 200kb allkeys-lru",
        lambda s: _command(
            s, "CONFIG", "SET", "maxmemory", "200kb", "maxmemory-policy", "allkeys-lru"
        ),
        lambda s: _command(s, "CONFIG", "SET", "maxmemory", "0"),
    ),
    "CLIENT KILL TYPE normal": Fault(
        "CLIENT KILL TYPE normal",
        lambda s: _command(s, "CLIENT", "KILL", "TYPE", "normal"),
        lambda s: None,
    ),
}


@pytest.fixture
def server(demo_database_url: str, own_redis: RedisServer) -> Iterator[UvicornServer]:
    env = server_env(demo_database_url, SALESCAST_REDIS_URL=own_redis.url)
    with UvicornServer(env, workers=2) as running:
        assert len(status_by_worker(running.url)) == 2
        yield running


def path_of(i: int) -> str:
    return f"/products/{PRODUCTS[i % len(PRODUCTS)]}/forecast?horizon={7 + i % 5}"


def seconds_until_l2_is_used(base_url: str, timeout: float = 30.0) -> float:
    """From now until both workers report Redis reachable and their breaker closed."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        workers = status_by_worker(base_url)
        if len(workers) == 2 and all(
            w["redis_reachable"] and w["breaker_state"] == "closed" for w in workers.values()
        ):
            return time.monotonic() - started
        time.sleep(0.1)
    return float("inf")


def warm_both_workers(base_url: str, *, keys: int = 20, tries: int = 2_000) -> None:
    """Until 2 x `keys` requests in a row are hits: every key in both workers' L1."""
    streak = 0
    with httpx.Client(timeout=60, headers=FRESH) as client:
        for i in range(tries):
            response = client.get(base_url + path_of(i))
            streak = streak + 1 if response.headers.get("x-cache") == "HIT-L1" else 0
            if streak >= 2 * keys:
                return
    raise AssertionError("the workers' L1 did not warm up")


def seconds_until_breakers_open(base_url: str, timeout: float = 15.0) -> float:
    """From now until both workers report their breaker not closed (asked without I/O)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        workers = stats_by_worker(base_url)
        if len(workers) == 2 and all(w["breaker"]["state"] != "closed" for w in workers.values()):
            return time.monotonic() - started
        time.sleep(0.05)
    return float("inf")


def run_fault(server: UvicornServer, redis_server: RedisServer, fault: Fault) -> list[Outcome]:
    # Measured on a warm cache: the latency of the fault, not of first computations.
    warm_both_workers(server.url)
    with LoadLoop(server.url, path_of, threads=4, max_requests=20_000, max_seconds=90) as load:
        loaded = time.monotonic() + 0.5  # the client threads are up
        time.sleep(BEFORE_SECONDS + 0.5)
        injected = time.monotonic()
        fault.inject(redis_server)
        to_open = seconds_until_breakers_open(server.url) if fault.opens_breaker else 0.0
        opened = time.monotonic()
        time.sleep(FAULT_SECONDS)
        fault.recover(redis_server)
        recovered = time.monotonic()
        resume = seconds_until_l2_is_used(server.url)
        time.sleep(0.5)
    during = [o for o in load.outcomes if injected <= o.started < recovered]
    before = [o.seconds for o in load.outcomes if o.started >= loaded and o.ended < injected]
    # Requests wholly inside the window: one in flight when the breakers
    # opened started before, and one still running at the recovery may be
    # served after it (a thawed Redis answers the subscription at once, which
    # empties L1, so that request computes): neither is "while open".
    steady = [o.seconds for o in during if o.started >= opened and o.ended < recovered]
    failed = [o for o in load.outcomes if o.status != 200]
    worst = max((o.seconds for o in during), default=0.0)
    # Requests over (most of) a socket timeout that ended before the recovery:
    # they waited on Redis (or on a stalled machine). Later ones may be
    # computing what the thawed subscription's emptying of L1 removed.
    waited = sum(o.seconds >= 0.8 * SOCKET_TIMEOUT for o in during if o.ended < recovered)
    opening = f"breakers open after {to_open:.2f} s, " if fault.opens_breaker else ""
    REDIS_LINES.append(
        f"redis {fault.name}: {len(load.outcomes)} requests, {len(failed)} non-2xx, "
        f"worst {worst * 1000:.0f} ms, {waited} took >= {0.8 * SOCKET_TIMEOUT * 1000:.0f} ms "
        "before the recovery, "
        f"{opening}p99 before the fault {percentile(before, 0.99) * 1000:.1f} ms, p99 "
        f"{'while open' if fault.opens_breaker else 'during the fault'} "
        f"{percentile(steady, 0.99) * 1000:.1f} ms ({len(steady)} requests), "
        f"L2 in use again {resume:.2f} s after return"
    )
    assert failed == [], [(o.path, o.status) for o in failed[:5]]
    assert worst < 5.0  # safety net: one socket timeout plus a computation, never seconds more
    assert resume < 30.0
    return load.outcomes


@pytest.mark.parametrize("fault", ["frozen (SIGSTOP)"])
def test_a_frozen_redis_under_load_fails_no_request(
    server: UvicornServer, own_redis: RedisServer, fault: str
) -> None:
    run_fault(server, own_redis, FAULTS[fault])


@pytest.mark.chaos
def test_every_redis_fault_under_load_fails_no_request(
    server: UvicornServer, own_redis: RedisServer
) -> None:
    for fault in FAULTS.values():
        run_fault(server, own_redis, fault)


@pytest.mark.chaos
def test_redis_back_from_a_snapshot_older_than_a_retrain_serves_no_old_forecast(
    server: UvicornServer, own_redis: RedisServer
) -> None:
    product = PRODUCTS[0]
    for _ in range(10):  # both workers and Redis hold version 1's forecasts
        assert httpx.get(server.url + path_of(0), headers=FRESH).json()["model_version"] == 1
    raw = _raw(own_redis)
    try:
        raw.save()
    finally:
        raw.close()
    trained = httpx.post(f"{server.url}/products/{product}/train", headers=ADMIN, timeout=120)
    assert trained.json()["version"] == 2

    def reload_old_snapshot(s: RedisServer) -> None:
        s.kill()
        s.start()  # loads the snapshot taken before the retrain

    outcomes = run_fault(
        server,
        own_redis,
        Fault("restarted from a pre-retrain RDB", lambda s: None, reload_old_snapshot),
    )
    versions = {
        o.body["model_version"] for o in outcomes if o.body and o.body["product_id"] == product
    }
    assert versions == {2}
