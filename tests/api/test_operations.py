"""Operations: the training and model series of `/metrics`, and the Grafana dashboard and
Prometheus alert rules in deploy/, checked against what `/metrics` really exports.

Runs on the trained demo store (SQLite and PostgreSQL), through the ASGI app.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from tests.cache.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/salescast.json"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
PRODUCT = "CA_1-HOBBIES_1"
# What PromQL may append to an exported family's name.
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (labels matched exactly)."""
    for line in metrics.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        series, _, label_text = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if series == name and found == labels:
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in /metrics")


def families(metrics: str) -> set[str]:
    """Every metric family /metrics declares (its `# TYPE` lines), with its sample names."""
    names: set[str] = set()
    for line in metrics.splitlines():
        if line.startswith("# TYPE "):
            family = line.split()[2]
            names |= {family, *(family + suffix for suffix in _SUFFIXES)}
    return names


def queried_names(expression: str) -> set[str]:
    return set(re.findall(r"\bsalescast_[a-z0-9_]+", expression))


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def train_once(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    started = client.post("/train", json={"product_ids": [PRODUCT], "force": True}, headers=admin)
    assert started.status_code == 202
    job_id = started.json()["id"]

    def finished() -> bool:
        return client.get(f"/jobs/{job_id}").json()["status"] not in ("queued", "running")

    assert eventually(finished, timeout=240)
    job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
    return job


def test_metrics_count_a_training_job_and_the_models_in_the_store(
    client: TestClient, admin: dict[str, str]
) -> None:
    before = client.get("/metrics").text
    trained_before = sample(before, "salescast_model_versions_trained")
    job = train_once(client, admin)
    assert job["status"] == "succeeded"
    [result] = job["results"]
    metrics = client.get("/metrics").text
    assert sample(metrics, "salescast_training_jobs", state="succeeded") >= 1
    assert sample(metrics, "salescast_training_jobs", state="running") == 0
    assert sample(metrics, "salescast_training_job_duration_seconds_count", state="succeeded") == 1
    assert sample(metrics, "salescast_training_products_total", outcome=result["outcome"]) == 1
    assert sample(metrics, "salescast_model_versions_trained") == trained_before + 1
    # Counted once: a second scrape adds nothing.
    again = client.get("/metrics").text
    assert sample(again, "salescast_training_job_duration_seconds_count", state="succeeded") == 1

    # The model gauges, against the same facts read through the API.
    products = client.get("/products").json()
    active = [p for p in products if p.get("active_version") is not None]
    worse = 0
    for product in active:
        versions = client.get(f"/products/{product['product_id']}/models").json()
        [current] = [v for v in versions if v["version"] == product["active_version"]]
        mase, naive = current["metrics"].get("mase"), current["metrics"].get("mase_seasonal_naive")
        worse += mase is not None and naive is not None and mase > naive
    assert sample(metrics, "salescast_models_active") == len(active) > 0
    assert sample(metrics, "salescast_models_active_worse_than_naive") == worse


def test_every_metric_the_dashboard_and_the_alerts_query_is_exported(
    client: TestClient,
) -> None:
    assert client.get(f"/products/{PRODUCT}/forecast").status_code == 200  # cache series
    exported = families(client.get("/metrics").text)
    queries = dashboard_expressions() + alert_expressions()
    assert len(queries) >= 20
    missing = {name for query in queries for name in queried_names(query)} - exported
    assert not missing, f"queried but not in /metrics: {sorted(missing)}"


def test_the_dashboard_imports_as_is() -> None:
    board = json.loads(DASHBOARD.read_text())
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert board["uid"]
    assert board["title"] == "salescast"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert "datasource" in variables
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
