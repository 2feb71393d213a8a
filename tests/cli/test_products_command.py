"""`salescast products` pages and filters like GET /products: a real process, real exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from salescast.service import SalescastService
from salescast.store import ProductQuery
from tests.cli.test_cli import run_cli
from tests.conftest import sqlite_url


@pytest.fixture
def db(demo_service: SalescastService) -> str:
    return demo_service.settings.database_url


def listed_ids(stdout: str) -> list[str]:
    """The product column of the table's body rows (the header row's border is ┃)."""
    return [line.split("│")[1].strip() for line in stdout.splitlines() if line.startswith("│")]


def test_products_pages_and_says_where_the_next_page_starts(
    db: str, demo_service: SalescastService
) -> None:
    everything = [p.product_id for p in demo_service.store.find_products(ProductQuery()).products]
    first = run_cli(db, "products", "--limit", "2", "--sort", "-id")
    assert first.returncode == 0, first.stderr
    assert listed_ids(first.stdout) == everything[::-1][:2]
    assert "products 1-2 of 5; next page: --offset 2" in first.stderr
    last = run_cli(db, "products", "--limit", "2", "--offset", "4", "--sort", "-id")
    assert listed_ids(last.stdout) == everything[::-1][4:]
    assert last.stderr.strip() == "products 5-5 of 5"
    assert listed_ids(run_cli(db, "products", "--all", "--limit", "1").stdout) == everything


def test_products_filters_by_id_and_by_model_quality(
    db: str, demo_service: SalescastService
) -> None:
    found = run_cli(db, "products", "-q", "hobbies")
    assert listed_ids(found.stdout) == ["CA_1-HOBBIES_1"]
    worse = ProductQuery(worse_than_naive=True, limit=None)
    expected = [p.product_id for p in demo_service.store.find_products(worse).products]
    result = run_cli(db, "products", "--worse-than-naive")
    assert listed_ids(result.stdout) == expected
    assert listed_ids(run_cli(db, "products", "--no-model").stdout) == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--limit", "0"], "--limit"),
        (["--limit", "5000"], "--limit"),
        (["--offset", "-1"], "--offset"),
        (["--sort", "price"], "--sort"),
    ],
)
def test_bad_products_options_exit_2_naming_the_option(
    tmp_path: Path, args: list[str], named: str
) -> None:
    result = run_cli(sqlite_url(tmp_path / "empty.db"), "products", *args)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr
