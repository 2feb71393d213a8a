"""Per-hit cost of salescast's decorator next to peer libraries, same Redis, same payloads.

For each payload, four groups are timed in interleaved blocks: Redis hits
from sync code (a raw redis-py ``GET`` of the payload's bytes, salescast,
dogpile.cache), Redis hits from asyncio (raw ``await GET``, salescast,
cashews, aiocache, fastapi-cache2), and the same two groups for in-process
hits (``functools.lru_cache`` as the floor). A Redis hit is shown as the
overhead over the raw GET of its own flavour (sync or async). The targets on
salescast's own Redis-hit overhead are measured apart, call by call
(``call_paired``), since the blocks' means swing by more than 10 us.
"""

from __future__ import annotations

import random
import resource
import sys
from dataclasses import dataclass
from typing import Any

import orjson
import peer_caches
import redis
import redis.asyncio
import workspace
from interleave import (
    PairedCalls,
    Timing,
    acalls_for,
    apaired_calls,
    atime_blocks,
    calls_for,
    paired_calls,
    paired_difference,
    time_blocks,
)
from report import Section, run_script

from salescast.forecasting.prediction import Forecast

# Blocks per group: an overhead of a few microseconds is read against a GET
# that swings by tens of microseconds on this machine, so many blocks.
BLOCKS = 21
BLOCKS_QUICK = 7
RAW = "redis-py GET"
DECODED = "redis-py GET + orjson.loads"
ASYNC_RAW = RAW + " (async)"
ASYNC_DECODED = DECODED + " (async)"
# Call-by-call pairs for salescast's own L2 overhead (the targets): the
# blocks above cannot resolve 10 us against the round trip's swing.
PAIRS = 20_000
PAIRS_QUICK = 3_000


@dataclass(frozen=True)
class PairedOverhead:
    """A call-paired overhead, with the minor page faults per call of each side
    (counted in a loop of their own right after): a process whose allocator
    hands memory back and takes it again would show here."""

    paired: PairedCalls
    faults: float
    base_faults: float


def call_paired(url: str, payload: Any, quick: bool) -> dict[str, PairedOverhead]:
    """salescast's Redis hit minus the raw GET (and GET + orjson.loads for
    dicts), called alternately one call at a time: from sync code, then from
    asyncio (keyed by the baseline's name, as in the blocks' table)."""
    pairs = PAIRS_QUICK if quick else PAIRS
    client = redis.Redis.from_url(url)
    baselines = sync_baselines(client, payload)
    ours = peer_caches.salescast_sync(url, payload)
    result = {
        name: PairedOverhead(
            paired_calls(ours, base, pairs=pairs), faults_per_call(ours), faults_per_call(base)
        )
        for name, base in baselines.items()
    }
    client.close()
    return result | peer_caches.run(_acall_paired(url, payload, pairs))


async def _acall_paired(url: str, payload: Any, pairs: int) -> dict[str, PairedOverhead]:
    client = redis.asyncio.Redis.from_url(url)
    await client.set("peer-raw", raw_bytes(payload))
    baselines: dict[str, Any] = {ASYNC_RAW: lambda: client.get("peer-raw")}
    if not isinstance(payload, bytes):
        baselines[ASYNC_DECODED] = lambda: _aget_decoded(client)
    ours = await peer_caches.salescast_async(url, payload)
    result = {
        name: PairedOverhead(
            await apaired_calls(ours, base, pairs=pairs),
            await afaults_per_call(ours),
            await afaults_per_call(base),
        )
        for name, base in baselines.items()
    }
    await client.aclose()
    return result


def faults_per_call(call: Any, calls: int = 2000) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        call()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


async def afaults_per_call(call: Any, calls: int = 2000) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        await call()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def payloads() -> dict[str, Any]:
    """A 5 KB dict, 100 KB of bytes and a real 30-day forecast of an M5 series."""
    record = {
        f"field_{i:02d}": {"id": i, "name": f"item-{i:04d}", "price": i * 1.25} for i in range(90)
    }
    service = workspace.service_with("l1", workspace.ensure_m5_store(), None)
    forecast: Forecast = service.predict_sales(workspace.M5_PRODUCTS[0], 30)
    service.close()
    return {
        f"{len(orjson.dumps(record)) / 1000:.1f} KB dict": record,
        "100 KB bytes": random.Random(7).randbytes(100_000),
        f"forecast dict ({len(orjson.dumps(dict(forecast))) / 1000:.1f} KB JSON)": dict(forecast),
    }


def raw_bytes(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else orjson.dumps(payload)


def sync_group(url: str | None, payload: Any, settings: dict[str, Any]) -> dict[str, Timing]:
    candidates: dict[str, Any] = {}
    if url is not None:
        candidates |= sync_baselines(redis.Redis.from_url(url), payload)
    else:
        candidates["functools.lru_cache"] = peer_caches.lru_cache_sync(None, payload)
    for name, factory in peer_caches.SYNC_PEERS.items():
        candidates[name] = factory(url, payload)
    calls = calls_for(candidates, budget_seconds=settings["budget"], cap=settings["cap"])
    return time_blocks(candidates, blocks=settings["blocks"], calls=calls)


def sync_baselines(client: redis.Redis, payload: Any) -> dict[str, Any]:
    """The raw GET of ``payload``'s bytes (stored now), and GET + orjson.loads for dicts."""
    client.set("peer-raw", raw_bytes(payload))
    baselines: dict[str, Any] = {RAW: lambda: client.get("peer-raw")}
    if not isinstance(payload, bytes):
        baselines[DECODED] = lambda: orjson.loads(client.get("peer-raw"))  # type: ignore[arg-type]
    return baselines


async def async_group(url: str | None, payload: Any, settings: dict[str, Any]) -> dict[str, Timing]:
    candidates: dict[str, Any] = {}
    client = None
    if url is not None:
        client = redis.asyncio.Redis.from_url(url)
        await client.set("peer-raw", raw_bytes(payload))
        candidates[ASYNC_RAW] = lambda: client.get("peer-raw")
        if not isinstance(payload, bytes):
            candidates[ASYNC_DECODED] = lambda: _aget_decoded(client)
    for name, factory in peer_caches.ASYNC_PEERS.items():
        candidates[name] = await factory(url, payload)
    calls = await acalls_for(candidates, budget_seconds=settings["budget"], cap=settings["cap"])
    timings = await atime_blocks(candidates, blocks=settings["blocks"], calls=calls)
    if client is not None:
        await client.aclose()
    return timings


async def _aget_decoded(client: redis.asyncio.Redis) -> Any:
    return orjson.loads(await client.get("peer-raw"))


def measure(url: str, payload: Any, quick: bool) -> dict[str, dict[str, Timing]]:
    """Per library: its Redis-hit and in-process-hit timings."""
    # Each candidate's block lasts about `budget` seconds (at most `cap` calls), so a slow
    # library (cashews' in-process hit of 100 KB takes milliseconds) does not stretch the run.
    blocks = BLOCKS_QUICK if quick else BLOCKS
    remote = {"blocks": blocks, "budget": 0.05 if quick else 0.15, "cap": 1000}
    local = {"blocks": blocks, "budget": 0.02 if quick else 0.06, "cap": 10_000}
    groups = {
        "redis": sync_group(url, payload, remote)
        | peer_caches.run(async_group(url, payload, remote)),
        "memory": sync_group(None, payload, local)
        | peer_caches.run(async_group(None, payload, local)),
    }
    names = dict.fromkeys([*groups["redis"], *groups["memory"]])
    return {
        name: {tier: groups[tier][name] for tier in groups if name in groups[tier]}
        for name in names
    }


def is_baseline(name: str) -> bool:
    return name.startswith(RAW)


def is_async(name: str) -> bool:
    return name in peer_caches.ASYNC_PEERS or name.endswith("(async)")


def baseline_of(name: str, timings: dict[str, dict[str, Timing]], *, decoded: bool) -> Timing:
    """The GET (or GET + decode, where the payload needs decoding) of ``name``'s flavour."""
    suffix = " (async)" if is_async(name) else ""
    if decoded and DECODED + suffix in timings:
        return timings[DECODED + suffix]["redis"]
    return timings[RAW + suffix]["redis"]


def overheads_of(timings: dict[str, dict[str, Timing]], *, decoded: bool) -> dict[str, float]:
    """µs each library's Redis hit adds to its flavour's baseline, paired block by block."""
    return {
        name: paired_difference(tiers["redis"], baseline_of(name, timings, decoded=decoded)) * 1e6
        for name, tiers in timings.items()
        if "redis" in tiers and not is_baseline(name)
    }


def rows_for(payload_name: str, timings: dict[str, dict[str, Timing]]) -> list[list[object]]:
    over_raw = overheads_of(timings, decoded=False)
    over_decoded = overheads_of(timings, decoded=True)
    rows: list[list[object]] = []
    for name, tiers in timings.items():
        redis_hit = tiers.get("redis")
        memory_hit = tiers.get("memory")
        baseline = "(baseline)" if redis_hit and is_baseline(name) else ""
        rows.append(
            [
                payload_name,
                name,
                f"{redis_hit.micros:.1f}" if redis_hit else "",
                f"{over_raw[name]:+.1f}" if name in over_raw else baseline,
                f"{over_decoded[name]:+.1f}" if name in over_decoded else baseline,
                f"{memory_hit.micros:.2f}" if memory_hit else "",
            ]
        )
    return rows


def paired_text(overhead: PairedOverhead) -> str:
    paired = overhead.paired
    return (
        f"{paired.median * 1e6:+.1f} us (95 % interval {paired.low * 1e6:+.1f} to "
        f"{paired.high * 1e6:+.1f}; {paired.pairs:,} call pairs; minor page faults per "
        f"call {overhead.faults:.2f} vs {overhead.base_faults:.2f})"
    )


def target_rows(
    section: Section,
    all_timings: dict[str, dict[str, dict[str, Timing]]],
    all_paired: dict[str, dict[str, PairedOverhead]],
) -> list[list[str]]:
    rows: list[list[str]] = []
    for payload_name, timings in all_timings.items():
        over_raw = overheads_of(timings, decoded=False)
        lowest = min(over_raw, key=lambda name: over_raw[name])
        l1 = timings["salescast (sync)"]["memory"].micros
        paired_rows = all_paired[payload_name]
        for baseline, paired in paired_rows.items():
            flavour = "asyncio" if is_async(baseline) else "sync"
            if baseline in (RAW, ASYNC_RAW) and (DECODED in paired_rows):
                # A dict: the raw GET hands back bytes nobody can use as the
                # dict, so this difference is mostly orjson's parse.
                rows.append(
                    [
                        f"{payload_name}: salescast L2 hit over a raw GET ({flavour})",
                        paired_text(paired),
                        "not a target: includes parsing the JSON (the next row subtracts it)",
                    ]
                )
                continue
            over = "a raw GET" if baseline in (RAW, ASYNC_RAW) else "GET + orjson.loads"
            rows.append(
                section.target(
                    f"{payload_name}: salescast L2 overhead over {over} ({flavour}) <= 10 us",
                    paired_text(paired),
                    paired.paired.verdict(10e-6),
                )
            )
        targets: list[tuple[str, str, bool | None]] = [
            (
                f"{payload_name}: salescast L2 overhead the lowest",
                f"lowest: {lowest} ({over_raw[lowest]:+.1f} us)",
                lowest.startswith("salescast"),
            ),
            (f"{payload_name}: salescast L1 hit <= 3 us", f"{l1:.2f} us", l1 <= 3),
        ]
        rows += [section.target(*target) for target in targets]
    return rows


def build(quick: bool, command: str) -> Section:
    section = Section("Peers: per-hit cost next to other cache libraries", command)
    all_timings: dict[str, dict[str, dict[str, Timing]]] = {}
    all_paired: dict[str, dict[str, PairedOverhead]] = {}
    with workspace.redis_server() as server:
        for payload_name, payload in payloads().items():
            all_timings[payload_name] = measure(server.url, payload, quick)
            all_paired[payload_name] = call_paired(server.url, payload, quick)
    versions = ", ".join(f"{name} {version}" for name, version in peer_caches.versions().items())
    section.text(
        f"Versions: {versions}. Median over {BLOCKS_QUICK if quick else BLOCKS} interleaved "
        "blocks; µs per hit. Overhead = the library's Redis hit minus a raw redis-py GET of the "
        "payload's bytes (orjson for dicts) in the same flavour (sync or asyncio), as the median "
        "of the block-by-block differences (both ran in the same blocks). A dict has to be "
        "parsed by any cache that returns it, so for dicts a second column subtracts a GET "
        "followed by `orjson.loads` instead: what is left is the library's own work (keys, "
        "framing, checks, counting). salescast's Redis hit is a `TieredCache` with L1 switched "
        "off, which reads with a plain GET (with L1 on, an L2 hit also asks PTTL in the same "
        "round trip, to give the L1 copy the time the entry has left). "
        + peer_caches.__doc__.split("\n\n", 1)[1].replace("\n", " ").strip()
    )
    rows = [row for name, timings in all_timings.items() for row in rows_for(name, timings)]
    section.table(
        [
            "payload",
            "library",
            "Redis hit (µs)",
            "overhead over GET (µs)",
            "over GET + decode (µs)",
            "in-process hit (µs)",
        ],
        rows,
    )
    section.text("### Targets")
    pairs = PAIRS_QUICK if quick else PAIRS
    section.text(
        "The targets on salescast's own L2 overhead are measured apart from the blocks, "
        "whose per-block means swing by more than 10 us: salescast's Redis hit and the "
        "baseline of the same flavour (sync, then asyncio) are called alternately, one call "
        f"each, {pairs:,} times (which goes first alternates), and the figure is the median "
        "of the per-pair differences with a 95 % "
        "interval of that median. A target is met when the whole interval is within it, "
        "missed when none of it is, and undecided otherwise. The target is the raw GET of "
        "the same bytes + 10 us; for a dict payload the GET's bytes are not yet the dict, so "
        "the target row is the GET followed by `orjson.loads` (the cheapest way any cache "
        "can return a dict from those bytes), and the difference to the bare GET is shown "
        "without a verdict: most of it is the parse, which no cache can skip. Each row also "
        "gives the minor page faults per call of salescast's hit and of the baseline, each "
        "counted over 2,000 calls right after the pairs. salescast's hit can cost less than "
        "the raw GET: its reads keep their pooled connections and skip the check redis-py's "
        "pool makes on every connection it hands out (docs/cache.md); what the cache's own "
        "steps cost over its own GET is `bench/l2_breakdown.py`'s to show."
    )
    section.table(["target", "measured", "verdict"], target_rows(section, all_timings, all_paired))
    section.charts["peers"] = {
        payload: {
            "overhead": overheads_of(timings, decoded=False),
            "memory": {n: t["memory"].micros for n, t in timings.items() if "memory" in t},
        }
        for payload, timings in all_timings.items()
    }
    return section


if __name__ == "__main__":
    sys.exit(run_script("peers.py", build))
