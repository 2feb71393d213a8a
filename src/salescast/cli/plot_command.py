"""`salescast plot`: the forecast's chart written to a PNG or SVG file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from salescast.cli import open_service
from salescast.forecasting.chart import CHART_FORMATS, ChartFormat
from salescast.forecasting.prediction import MAX_HORIZON_DAYS


def plot(
    product_id: Annotated[str, typer.Argument(help="product id")],
    output: Annotated[
        Path, typer.Option("--output", "-o", dir_okay=False, help="FILE.png or FILE.svg")
    ],
    horizon: Annotated[int, typer.Option(min=1, max=MAX_HORIZON_DAYS, help="days ahead")] = 30,
    interval: Annotated[
        float | None, typer.Option(min=0.01, max=0.99, help="uncertainty interval width")
    ] = None,
) -> None:
    """Draw the forecast over the recent history: the picture GET .../forecast?format=png gives."""
    chart = chart_format(output)
    with open_service() as service:
        read = service.read_plot(product_id, horizon=horizon, interval=interval, fmt=chart)
    assert read.body is not None  # "not modified" needs an ETag, and none was given
    output.write_bytes(read.body)
    typer.echo(f"wrote {output} ({len(read.body)} bytes)")


def chart_format(output: Path) -> ChartFormat:
    """The chart format a file name asks for, by its extension; a usage error otherwise."""
    suffix = output.suffix.lower().removeprefix(".")
    if suffix not in CHART_FORMATS:
        raise typer.BadParameter(
            f"{output.name!r} must end in .png or .svg (the format is the file's extension)",
            param_hint="--output",
        )
    return "png" if suffix == "png" else "svg"
