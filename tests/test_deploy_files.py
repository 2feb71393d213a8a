"""The Dockerfile and deploy/compose.yaml, checked statically (no container engine runs here).

Every `SALESCAST_*` variable they set is a setting that accepts the value,
every `salescast` command they run parses with salescast's own CLI, the ports
agree from the Dockerfile through compose to Prometheus and Grafana, and the
mounted folders exist.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from salescast.cli.main import app
from salescast.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
INTERPOLATION = re.compile(r"\$\{(\w+)[^}]*\}")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def dockerfile_instructions(name: str) -> list[str]:
    """The arguments of every `name` instruction, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [
        line.split(None, 1)[1].strip()
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [name]
    ]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in dockerfile_instructions("ENV"):
        env.update(word.split("=", 1) for word in shlex.split(instruction))  # type: ignore[misc]
    return env


def salescast_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image", "").startswith("salescast") or "build" in service
    }


def salescast_env() -> list[tuple[str, str, str]]:
    """(where, variable, value) of every SALESCAST_* variable set anywhere."""
    found = [("Dockerfile", k, v) for k, v in dockerfile_env().items()]
    for name, service in compose()["services"].items():
        found += [(name, k, str(v)) for k, v in service.get("environment", {}).items()]
    return [entry for entry in found if entry[1].startswith("SALESCAST_")]


def commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every salescast command the files run."""
    [cmd] = dockerfile_instructions("CMD")
    found = [("Dockerfile CMD", json.loads(cmd))]
    found += [(name, s["command"]) for name, s in salescast_services().items() if "command" in s]
    return found


def container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(mapping).rsplit(":", 1)[1]) for mapping in service.get("ports", [])}


def test_the_files_set_variables_and_run_commands_at_all() -> None:
    # The other tests iterate over these: make sure they find something.
    assert {v for _, v, _ in salescast_env()} >= {
        "SALESCAST_DATABASE_URL", "SALESCAST_REDIS_URL", "SALESCAST_PORT", "SALESCAST_HOST",
    }  # fmt: skip
    assert [argv[1] for _, argv in commands()] == ["serve", "demo", "serve"]


@pytest.mark.parametrize(("where", "variable", "value"), salescast_env())
def test_every_salescast_variable_is_a_setting_that_takes_the_value(
    where: str, variable: str, value: str
) -> None:
    field = variable.removeprefix("SALESCAST_").lower()
    assert field in Settings.model_fields, f"{where}: {variable} is no setting"
    value = INTERPOLATION.sub("interpolated-by-compose", value)
    Settings(_env_file=None, **{field: value})  # type: ignore[call-arg]  # raises if refused


@pytest.mark.parametrize(("where", "argv"), commands())
def test_every_command_is_a_real_salescast_command_with_real_options(
    where: str, argv: list[str]
) -> None:
    assert argv[0] == "salescast", where
    group = typer.main.get_command(app)
    command = group.commands.get(argv[1])  # type: ignore[attr-defined]
    assert command is not None, f"{where}: no command {argv[1]!r}"
    command.make_context(argv[1], list(argv[2:]))  # parses options and values, runs nothing
    shown = CliRunner().invoke(app, [argv[1], "--help"])
    assert shown.exit_code == 0, shown.output


def test_the_api_runs_two_workers_as_a_non_root_user_from_the_lock() -> None:
    assert dockerfile_instructions("FROM") == ["python:3.11-slim"]
    [user] = dockerfile_instructions("USER")
    assert user not in ("root", "0")
    assert any("--constraint requirements.lock" in r for r in dockerfile_instructions("RUN"))
    serve = compose()["services"]["salescast"]["command"]
    assert serve[serve.index("--workers") + 1] == "2"


def test_the_ports_agree_from_the_dockerfile_to_prometheus() -> None:
    services = compose()["services"]
    port = int(dockerfile_env()["SALESCAST_PORT"])
    assert [int(p) for p in dockerfile_instructions("EXPOSE")] == [port]
    [healthcheck] = dockerfile_instructions("HEALTHCHECK")
    assert f"127.0.0.1:{port}/healthz" in healthcheck
    assert int(services["salescast"]["environment"]["SALESCAST_PORT"]) == port
    assert container_ports(services["salescast"]) == {port}

    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"salescast:{port}"]

    datasources = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    [source] = yaml.safe_load(datasources.read_text())["datasources"]
    url = urlsplit(source["url"])
    assert url.hostname in services
    assert url.port in container_ports(services[str(url.hostname)])


def test_the_backends_in_the_urls_are_services_of_the_file() -> None:
    services = compose()["services"]
    env = services["salescast"]["environment"]
    for variable in ("SALESCAST_DATABASE_URL", "SALESCAST_REDIS_URL"):
        assert urlsplit(env[variable]).hostname in services, variable


def test_grafana_provisions_the_dashboard_folder_it_mounts() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(volume.removesuffix(":ro").split(":") for volume in grafana["volumes"])
    for source in mounts:
        assert (DEPLOY / source).is_dir(), source
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = DEPLOY / "grafana" / "provisioning" / "dashboards" / "salescast.yml"
    [provider] = yaml.safe_load(providers.read_text())["providers"]
    assert provider["options"]["path"] == mounts["./grafana"]
    prometheus = compose()["services"]["prometheus"]
    assert [v.split(":")[0] for v in prometheus["volumes"]] == ["./prometheus"]
