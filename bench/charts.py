"""PNG charts for RESULTS.md, drawn from the sections' chart data (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # the backend is chosen first

CHARTS = Path(__file__).resolve().parent / "charts"


def grouped_bars(
    groups: dict[str, dict[str, float]], *, title: str, ylabel: str, log: bool, path: Path
) -> Path:
    """One cluster of bars per group, one bar per series, series in first-seen order."""
    series = list(dict.fromkeys(name for values in groups.values() for name in values))
    width = 0.8 / max(1, len(series))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(groups) + 2), 4.2))
    for index, name in enumerate(series):
        xs = [g + index * width for g in range(len(groups))]
        ys = [values.get(name, 0.0) for values in groups.values()]
        axes.bar(xs, ys, width, label=name)
    axes.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
    axes.set_xticklabels(list(groups), fontsize=8)
    if log:
        axes.set_yscale("log")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def claims_chart(data: dict[str, dict[str, float]]) -> Path:
    scaled = {op: {k: v * 1000 for k, v in kinds.items()} for op, kinds in data.items()}
    return grouped_bars(
        scaled,
        title="Per call: computed vs L2 hit vs L1 hit (log scale)",
        ylabel="ms per call",
        log=True,
        path=CHARTS / "claims.png",
    )


def peers_charts(data: dict[str, dict[str, dict[str, float]]]) -> list[Path]:
    overhead = {payload: values["overhead"] for payload, values in data.items()}
    memory = {payload: values["memory"] for payload, values in data.items()}
    return [
        grouped_bars(
            overhead,
            title="Redis hit: overhead over a raw redis-py GET",
            ylabel="µs per hit",
            log=False,
            path=CHARTS / "peers_redis_overhead.png",
        ),
        grouped_bars(
            memory,
            title="In-process hit (log scale)",
            ylabel="µs per hit",
            log=True,
            path=CHARTS / "peers_in_process.png",
        ),
    ]


def http_chart(data: dict[str, dict[str, dict[str, float]]]) -> Path:
    groups = {
        f"{workers} worker(s)": {n: f["rps"] for n, f in servers.items()}
        for workers, servers in data.items()
    }
    return grouped_bars(
        groups,
        title="Warm forecast, requests/s (wrk, 16 connections)",
        ylabel="requests/s",
        log=False,
        path=CHARTS / "http.png",
    )


def hit_rate_chart(data: dict[str, dict[str, float]]) -> Path:
    scaled = {
        rate: {ns: value * 100 for ns, value in rates.items()} for rate, rates in data.items()
    }
    return grouped_bars(
        scaled,
        title="Hit rate by namespace (Zipf 1.1, 1,000 products)",
        ylabel="%",
        log=False,
        path=CHARTS / "hit_rates.png",
    )


def stampede_chart(data: dict[str, float]) -> Path:
    return grouped_bars(
        {"4 processes x 10 callers": data},
        title="Computations for one cold key (lower is better; 1 is ideal)",
        ylabel="computations",
        log=False,
        path=CHARTS / "stampede.png",
    )


def training_chart(data: dict[str, float]) -> Path:
    return grouped_bars(
        {"store-item series": data},
        title="Training throughput",
        ylabel="series per second",
        log=False,
        path=CHARTS / "training.png",
    )


def draw_all(charts: dict[str, Any]) -> list[Path]:
    """Every chart whose data a section provided; returns the files written."""
    CHARTS.mkdir(exist_ok=True)
    written: list[Path] = []
    if "claims" in charts:
        written.append(claims_chart(charts["claims"]))
    if "peers" in charts:
        written += peers_charts(charts["peers"])
    if "http" in charts:
        written.append(http_chart(charts["http"]))
    if "hit_rates" in charts:
        written.append(hit_rate_chart(charts["hit_rates"]))
    if "stampede" in charts:
        written.append(stampede_chart(charts["stampede"]))
    if "training" in charts:
        written.append(training_chart(charts["training"]))
    return written
