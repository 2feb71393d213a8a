"""Size: bytes in Redis per model, per forecast and per history, on the M5 series.

Each of the ten trained M5 products' model, a 30-day and a 365-day forecast and its
daily history are cached through ``SalescastService`` into a fresh Redis;
then every key under the prefix is measured: ``STRLEN`` (the framed,
zstd-compressed value) and ``MEMORY USAGE`` (what Redis spends on the key).
The store's own model blob (Prophet JSON, zstd) is shown next to it.
Target: at most 40 KB per 5-year daily model.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict

import redis
import workspace
from report import Section, run_script


def fill_cache(redis_url: str) -> dict[str, int]:
    """Cache every product's entries; return each product's store blob size."""
    service = workspace.service_with("l1", workspace.ensure_m5_store(), redis_url)
    blobs: dict[str, int] = {}
    for product in workspace.M5_TRAINED:
        loaded = service.load_model(product)
        service.predict_sales(product, 30)
        service.predict_sales(product, 365)
        service.get_history(product)
        blobs[product] = len(service.registry.get_model_blob(product, loaded.version))
    service.close()
    return blobs


def measure_keys(redis_url: str) -> dict[str, list[tuple[int, int]]]:
    """Per namespace (and forecast horizon): (value bytes, Redis memory) of each entry."""
    client = redis.Redis.from_url(redis_url)
    sizes: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for key in client.scan_iter(match="bench-l1:*", count=1000):
        namespace = key.decode().split(":")[1]
        if namespace.startswith("_"):
            continue  # tag generations and leases
        length = int(client.strlen(key))
        if namespace == "prediction":
            namespace = "forecast, 30 days" if length < 6000 else "forecast, 365 days"
        sizes[namespace].append((length, int(client.memory_usage(key) or 0)))
    client.close()
    return sizes


def build(quick: bool, command: str) -> Section:
    section = Section("Size in Redis per entry", command)
    with workspace.redis_server() as server:
        blobs = fill_cache(server.url)
        sizes = measure_keys(server.url)
    rows: list[list[object]] = []
    for namespace, entries in sorted(sizes.items()):
        values = [length for length, _ in entries]
        memory = [used for _, used in entries]
        rows.append(
            [
                namespace,
                len(entries),
                f"{statistics.median(values) / 1000:.1f}",
                f"{max(values) / 1000:.1f}",
                f"{statistics.median(memory) / 1000:.1f}",
            ]
        )
    blob_sizes = list(blobs.values())
    rows.append(
        ["model blob in the store (for comparison)", len(blob_sizes),
         f"{statistics.median(blob_sizes) / 1000:.1f}", f"{max(blob_sizes) / 1000:.1f}", ""]
    )  # fmt: skip
    section.text(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    section.table(["entry", "entries", "median KB", "max KB", "median Redis MEMORY USAGE KB"], rows)
    models = [length for length, _ in sizes.get("model", [(0, 0)])]
    over = sum(length > 40_000 for length in models)
    row = section.target(
        "model <= 40 KB in Redis (5-year daily M5 series)",
        f"largest {max(models) / 1000:.1f} KB; {over} of {len(models)} over 40 KB",
        over == 0,
    )
    section.table(["target", "measured", "verdict"], [row])
    return section


if __name__ == "__main__":
    sys.exit(run_script("sizes.py", build))
