"""Where the time of a salescast Redis hit goes when the round trip is taken away.

Not part of ``make bench``: a probe for reading the peers table, whose L2
overhead rows sit inside the noise of a loopback round trip (see
docs/benchmarks.md). A decorated function over a ``TieredCache`` with L1
off is filled through a real ``redis-server``; then the backend's GET is
replaced, in this process only, by a function returning the stored frame,
so each call runs every step of a Redis hit except the I/O. Printed next to
it, in the same interleaved blocks: the frame checks and decode alone
(``FrameSerializer.loads``) and ``orjson.loads`` of the same JSON.

Before that, with the real round trip, call-pair differences
(``interleave.paired_calls``): the backend's GET against redis-py's own, and
the whole decorated hit against that GET followed by the frame decode, i.e.
what the cache's path costs in place, with a process that has just woken
from waiting on a socket.

Run: ``.venv/bin/python bench/l2_breakdown.py`` (about a minute).
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import redis
import workspace
from interleave import paired_calls, time_blocks
from workspace import RedisServer

from salescast.cache import RedisBackend, TieredCache, cached


def forecast_payload() -> dict[str, Any]:
    service = workspace.service_with("l1", workspace.ensure_m5_store(), None)
    try:
        return dict(service.predict_sales(workspace.M5_PRODUCTS[0], 30))
    finally:
        service.close()


def main() -> int:
    payload = forecast_payload()
    document = orjson.dumps(payload)
    with RedisServer() as server:
        backend = RedisBackend(server.url)
        cache = TieredCache(l2=backend, use_l1=False, prefix="breakdown", subscribe=False)

        @cached(namespace="breakdown", ttl=3600, cache=cache)
        def load(name: str) -> Any:
            return payload

        load("x")
        (stored,) = redis.Redis.from_url(server.url).scan_iter(match="breakdown:*")
        entry_key = stored.decode()
        frame = backend.get_value(entry_key)
        assert frame is not None, "the hit was not stored"
        client = redis.Redis.from_url(server.url)
        in_place = {
            "RedisBackend GET - redis-py GET": paired_calls(
                lambda: backend.get_value(entry_key), lambda: client.get(entry_key), pairs=10_000
            ),
            "decorated hit - (GET + frame decode)": paired_calls(
                lambda: load("x"),
                lambda: cache.serializer.loads(entry_key, backend.get_value(entry_key)),
                pairs=10_000,
            ),
        }
        client.close()
        # From here on no I/O: the GET answers with the stored frame.
        backend.get_value = lambda key: frame  # type: ignore[method-assign]
        timings = time_blocks(
            {
                "decorated hit, no I/O": lambda: load("x"),
                "FrameSerializer.loads": lambda: cache.serializer.loads(entry_key, frame),
                "orjson.loads": lambda: orjson.loads(document),
            },
            blocks=15,
            calls=5_000,
        )
        cache.close()
    print(f"forecast dict, {len(document) / 1000:.1f} KB JSON")
    print("with the round trip: median difference per call pair, us [95 % interval]")
    for name, paired in in_place.items():
        print(
            f"{name:38s} {paired.median * 1e6:+7.2f} "
            f"[{paired.low * 1e6:+.2f}, {paired.high * 1e6:+.2f}]"
        )
    print("without I/O: median of 15 blocks, us per call")
    for name, timing in timings.items():
        print(f"{name:24s} {timing.median * 1e6:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
