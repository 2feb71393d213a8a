"""`salescast plot` writes the forecast's chart; a wrong file name is a usage error."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from salescast.service import SalescastService
from tests.cli.test_cli import run_cli

PRODUCT = "CA_1-FOODS_3"


@pytest.fixture
def db(demo_service: SalescastService) -> str:
    return demo_service.settings.database_url


def test_plot_writes_a_png_of_the_http_charts_size(db: str, tmp_path: Path) -> None:
    target = tmp_path / "chart.PNG"  # the extension's case does not matter
    result = run_cli(db, "plot", PRODUCT, "--horizon", "14", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    with Image.open(target) as image:
        assert (image.format, image.size) == ("PNG", (1000, 450))


def test_plot_writes_the_very_svg_the_http_route_serves(
    db: str, client: TestClient, tmp_path: Path
) -> None:
    target = tmp_path / "chart.svg"
    result = run_cli(
        db, "plot", PRODUCT, "--horizon", "10", "--interval", "0.5", "--output", str(target)
    )
    assert result.returncode == 0, result.stderr
    root = ElementTree.parse(target).getroot()
    texts = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert f"{PRODUCT}: model v1, 10 days ahead, 50% interval" in texts
    # Forecasts are deterministic and charts carry no date: the same bytes.
    served = client.get(
        f"/products/{PRODUCT}/forecast", params={"horizon": 10, "interval": 0.5, "format": "svg"}
    )
    assert served.content == target.read_bytes()


def test_a_file_name_without_png_or_svg_is_refused_and_nothing_is_written(
    db: str, tmp_path: Path
) -> None:
    target = tmp_path / "chart.jpg"
    result = run_cli(db, "plot", PRODUCT, "-o", str(target))
    assert result.returncode == 2
    assert "chart.jpg" in result.stderr
    assert ".png or .svg" in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists()


def test_forecast_format_png_points_to_the_plot_command(db: str) -> None:
    result = run_cli(db, "forecast", PRODUCT, "--format", "png")
    assert result.returncode == 2
    assert f"salescast plot {PRODUCT} -o FILE.png" in result.stderr
    assert "Traceback" not in result.stderr
