"""`salescast train --all [--force]` and `salescast models ...` as users run them (processes)."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from salescast.service import SalescastService
from tests.cli import test_cli
from tests.support.demo_uploads import last_days, upload

P1 = "CA_1-HOBBIES_1"


def run_cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`salescast *args` with the settings the demo store was trained with (see make_settings):
    other training settings would count as a change and retrain every product."""
    return test_cli.run_cli(db, *args, SALESCAST_UNCERTAINTY_SAMPLES="100")


@pytest.fixture
def db(demo_service: SalescastService) -> str:
    return demo_service.settings.database_url


def listed(db: str, product_id: str) -> list[dict[str, object]]:
    result = run_cli(db, "models", product_id, "--format", "json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_train_all_reports_skipped_products_and_force_retrains_them(
    db: str, demo_service: SalescastService
) -> None:
    upload(demo_service, last_days(P1, 7))
    plain = run_cli(db, "train", "--all")
    assert plain.returncode == 0, plain.stderr
    assert f"{P1}: skipped" not in plain.stdout
    assert "CA_3-FOODS_3: skipped: data unchanged since version 1 was trained" in plain.stdout
    assert "trained 1 of 5 products (1 activated, 0 not activated), 4 skipped" in plain.stdout
    forced = run_cli(db, "train", "--all", "--force")
    assert "trained 5 of 5 products (5 activated, 0 not activated), 0 skipped" in forced.stdout
    assert [m["version"] for m in listed(db, "CA_3-FOODS_3")] == [1, 2]


def test_activate_pins_a_version_and_unpin_releases_it(db: str) -> None:
    assert run_cli(db, "train", "--product", P1).returncode == 0
    rolled = run_cli(db, "models", "activate", P1, "1")
    assert "version 1 is active and pinned" in rolled.stdout
    trained = run_cli(db, "train", "--product", P1)
    assert "version 3 stored, not activated: version 1 is pinned" in trained.stdout
    table = run_cli(db, "models", P1).stdout
    assert "pinned" in table
    assert [(m["version"], m["active"], m["pinned"]) for m in listed(db, P1)] == [
        (1, True, True),
        (2, False, False),
        (3, False, False),
    ]
    unpinned = run_cli(db, "models", "unpin", P1)
    assert unpinned.returncode == 0, unpinned.stderr
    assert listed(db, P1)[0]["pinned"] is False


def test_models_delete_removes_an_inactive_version_and_refuses_the_active_one(
    db: str, demo_service: SalescastService
) -> None:
    demo_service.train_product(P1)  # version 2 active
    refused = run_cli(db, "models", "delete", P1, "2")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"salescast: version 2 is the active version of product {P1!r} and cannot be deleted; "
        f"activate another version first (POST /products/{P1}/models/VERSION/activate or "
        f"`salescast models activate {P1} VERSION`)"
    ]
    deleted = run_cli(db, "models", "delete", P1, "1")
    assert deleted.returncode == 0, deleted.stderr
    assert [m["version"] for m in listed(db, P1)] == [2]
    missing = run_cli(db, "models", "delete", P1, "1")
    assert missing.returncode == 1
    assert "no model version 1" in missing.stderr


def test_models_prune_keeps_the_newest_and_the_active_version(
    db: str, demo_service: SalescastService
) -> None:
    run_cli(db, "models", "activate", P1, "1")
    for _ in range(3):  # versions 2-4, in process: `train` itself is tested above
        demo_service.train_product(P1)
    pruned = run_cli(db, "models", "prune", P1, "--keep", "1")
    assert pruned.returncode == 0, pruned.stderr
    assert f"{P1}: deleted versions 2, 3" in pruned.stdout
    assert [m["version"] for m in listed(db, P1)] == [1, 4]
    everywhere = run_cli(db, "models", "prune", "--all", "--keep", "1")
    assert "deleted 0 versions of 5 products" in everywhere.stdout


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["models", "prune", P1, "--keep", "0"], 2, "--keep"),
        (["models", "prune", P1, "--keep", "-1"], 2, "--keep"),
        (["models", "prune", P1], 2, "prune (ID | --all) --keep N"),
        (["models", "prune", P1, "--all", "--keep", "1"], 2, "prune (ID | --all) --keep N"),
        (["models", "prune", "nope", "--keep", "1"], 1, "unknown product 'nope'"),
        (["models", "unpin", "nope"], 1, "unknown product 'nope'"),
        (["models", "delete", P1], 2, "Missing argument 'VERSION'"),
        (["models", "delete", P1, "x"], 2, "Invalid value for 'VERSION'"),
        (["models", "activate", P1, "0"], 2, "VERSION"),
        (["models", P1, "--keep", "2"], 2, "No such option: --keep"),
        (["models", P1, "--format", "xml"], 2, "table, json or csv"),
    ],
)
def test_bad_model_commands_exit_non_zero_with_a_reason_and_change_nothing(
    db: str, demo_service: SalescastService, args: list[str], status: int, message: str
) -> None:
    before = demo_service.list_models(P1)
    result = run_cli(db, *args)
    assert result.returncode == status, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert demo_service.list_models(P1) == before


def test_models_as_csv_has_a_header_and_one_row_per_version(db: str) -> None:
    result = run_cli(db, "models", P1, "--format", "csv")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("version,active,pinned,created_at,")
    assert lines[1].startswith("1,True,False,")
    assert len(lines) == 2
    # the correction its forecasts use, by name, as stored with the version
    [row] = csv.DictReader(io.StringIO(result.stdout))
    [version] = listed(db, P1)
    stored = version["metrics"]["point_adjustment"]  # type: ignore[index]
    assert row["correction"] == stored["candidate"] != ""
