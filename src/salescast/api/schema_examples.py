"""Examples of the API's answers for the OpenAPI document, taken from a real M5 product.

Recorded from salescast itself over the bundled demo data (Walmart store CA_1,
department FOODS_3, M5): products, history, the model version trained on it
and its forecast, so `/docs` shows what the service really answers instead of
`"string"` and `0`. Kept apart from `schemas.py` so the models stay readable.
"""

from __future__ import annotations

from typing import Any

PRODUCT_EXAMPLE: dict[str, Any] = {
    "product_id": "CA_1-FOODS_3",
    "frequency": "D",
    "sales_days": 729,
    "first_date": "2014-04-25",
    "last_date": "2016-04-24",
    "active_version": 1,
    "data_version": 1,
    "mase": 1.1314993689855202,
    "mase_seasonal_naive": 0.9397877398452462,
}

SALES_HISTORY_EXAMPLE: dict[str, Any] = {
    "product_id": "CA_1-FOODS_3",
    "freq": "M",
    "data_version": 1,
    "points": [
        {"date": "2016-02-01", "quantity": 59231.0},
        {"date": "2016-03-01", "quantity": 64390.0},
        {"date": "2016-04-01", "quantity": 54491.0},
    ],
}

INGEST_EXAMPLE: dict[str, Any] = {
    "rows": 1458,
    "products": ["CA_1-FOODS_3", "TX_2-HOUSEHOLD_1"],
    "data_versions": {"CA_1-FOODS_3": 2, "TX_2-HOUSEHOLD_1": 2},
}

TRAINING_METRICS_EXAMPLE: dict[str, Any] = {
    "holdout_start": "2016-03-28",
    "holdout_end": "2016-04-24",
    "holdout_days": 28,
    "mae": 272.9627769648913,
    "mae_seasonal_naive": 226.71428571428572,
    "mase": 1.1314993689855202,
    "mase_seasonal_naive": 0.9397877398452462,
    "sales_days": 729,
}

MODEL_VERSION_EXAMPLE: dict[str, Any] = {
    "product_id": "CA_1-FOODS_3",
    "version": 1,
    "created_at": "2024-06-03T09:15:04.940651Z",
    "train_start": "2014-04-25",
    "train_end": "2016-04-24",
    "data_version": 1,
    "params": {
        "holidays_country": None,
        "interval_width": 0.8,
        "seasonality_mode": "additive",
        "yearly_seasonality": "auto",
        "weekly_seasonality": "auto",
        "holdout_days": 28,
        "min_history_days": 60,
        "uncertainty_samples": 1000,
    },
    "metrics": TRAINING_METRICS_EXAMPLE,
    "prophet_version": "1.5.0",
    "model_format": "prophet-json+zstd",
    "model_bytes": 8047,
    "active": True,
    "pinned": False,
    "not_activated_reason": None,
}

TRAINING_SUMMARY_EXAMPLE: dict[str, Any] = {
    "product_id": "CA_1-FOODS_3",
    "version": 1,
    "error": None,
    "metrics": TRAINING_METRICS_EXAMPLE,
    "outcome": "activated",
    "reason": None,
}

FORECAST_EXAMPLE: dict[str, Any] = {
    "product_id": "CA_1-FOODS_3",
    "model_version": 1,
    "frequency": "D",
    "horizon": 3,
    "interval": 0.8,
    "generated_at": "2024-06-03T09:15:04+00:00",  # the version's created_at
    "points": [
        {
            "ds": "2016-04-25",
            "yhat": 2186.0170615195066,
            "yhat_lower": 1907.1282500938078,
            "yhat_upper": 2465.442528197559,
        },
        {
            "ds": "2016-04-26",
            "yhat": 1911.9964937351322,
            "yhat_lower": 1610.2152989791462,
            "yhat_upper": 2178.529486507917,
        },
        {
            "ds": "2016-04-27",
            "yhat": 1893.7989158715059,
            "yhat_lower": 1607.721718022451,
            "yhat_upper": 2184.4825111552877,
        },
    ],
}

WARMUP_EXAMPLE: dict[str, Any] = {
    "state": "done",
    "total": 5,
    "done": 5,
    "skipped": 0,
    "failed": 0,
    "started_at": "2024-06-03T09:15:02Z",
    "finished_at": "2024-06-03T09:15:09Z",
    "error": None,
    "failures": [],
}

_WORKER = {"pid": 647, "cache_instance": "ad358e2b32ac626d"}

CACHE_STATUS_EXAMPLE: dict[str, Any] = {
    "worker": _WORKER,
    "backend": "memory",
    "redis_url": None,
    "redis_reachable": None,
    "redis_version": None,
    "latency_ms": None,
    "breaker_state": None,
    "subscription": None,
    "l1_entries": 3,
    "l1_bytes": 9238,
    "redis_topology": None,
    "redis_writable": None,
    "redis_nodes": None,
    "breaker_last_error": None,
    "warmup": WARMUP_EXAMPLE,
}

_IDLE_LATENCY = {"count": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}

CACHE_STATS_EXAMPLE: dict[str, Any] = {
    "worker": _WORKER,
    "namespaces": {
        "prediction": {
            "namespace": "prediction",
            "l1": {
                "hits": 1,
                "misses": 1,
                "sets": 1,
                "errors": 0,
                "skipped": 0,
                "evictions": 0,
                "bytes_read": 477,
                "bytes_written": 477,
                "latency": {"count": 2, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0},
            },
            "l2": {
                "hits": 0,
                "misses": 0,
                "sets": 0,
                "errors": 0,
                "skipped": 0,
                "evictions": 0,
                "bytes_read": 0,
                "bytes_written": 0,
                "latency": _IDLE_LATENCY,
            },
            "hits": 1,
            "misses": 1,
            "computations": 1,
            "hit_rate": 0.5,
            "errors": 0,
        }
    },
    "l1": {
        "entries": 3,
        "bytes": 9238,
        "max_entries": 10000,
        "max_bytes": 268435456,
        "evictions": 0,
    },
    "breaker": None,
    "subscription": None,
    "compute": {"running": 0, "waiting": 0, "max_running": 2, "max_waiting": 64, "rejected": 0},
}

ERROR_EXAMPLE: dict[str, Any] = {"detail": "unknown product 'CA_9-FOODS_3'"}
