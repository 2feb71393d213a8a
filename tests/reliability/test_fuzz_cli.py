"""`schemathesis run` from the command line against a live `salescast serve` (make chaos).

The same three checks as the in-process run (no 5xx, response schema, content type),
over real HTTP through uvicorn. As there, `min_history_days` is set above any
product's history, so training endpoints answer without fitting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.reliability.figures import CLI_CASES
from tests.reliability.servers import server_env
from tests.support.uvicorn_server import UvicornServer

EXAMPLES_PER_OPERATION = 100
SEED = 1
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


@pytest.fixture
def live_server(demo_database_url: str) -> Iterator[UvicornServer]:
    env = server_env(demo_database_url, SALESCAST_MIN_HISTORY_DAYS="100000")
    with UvicornServer(env) as server:
        yield server


@pytest.mark.chaos
def test_schemathesis_run_against_a_live_server_finds_no_failure(
    live_server: UvicornServer, tmp_path: Path
) -> None:
    report_path = tmp_path / "schemathesis.json"
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{live_server.url}/openapi.json",
        "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks", CHECKS,
        "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--seed", str(SEED),
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--report", "json", "--report-json-path", str(report_path),
    ]  # fmt: skip
    # cwd: no schemathesis.toml of the developer's, and the example database stays in tmp.
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert report_path.exists(), result.stdout[-6000:] + result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    CLI_CASES["schemathesis run against a live server"] = report["test_cases"]["generated"]
    assert result.returncode == 0, result.stdout[-6000:]
    assert report["test_cases"]["with_failures"] == 0
    assert report["operations"]["tested"] == report["operations"]["total"] > 0
    assert report["test_cases"]["generated"] >= 1000
