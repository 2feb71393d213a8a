"""`salescast forecast`: one product's forecast, or every trained product's, streamed to stdout."""

from __future__ import annotations

from typing import Annotated

import typer

from salescast.cli import open_service
from salescast.cli.output import OutputFormat, output_format, print_forecast
from salescast.forecasting.chart import CHART_FORMATS
from salescast.forecasting.prediction import MAX_HORIZON_DAYS
from salescast.service import SalescastService
from salescast.service.batch_output import batch_writer
from salescast.service.forecast_batches import PER_PRODUCT_ERRORS, BatchError, batch_error


def forecast(
    product_id: Annotated[str | None, typer.Argument(help="product id (or --all)")] = None,
    all_products: Annotated[
        bool, typer.Option("--all", help="every product with a trained model")
    ] = False,
    horizon: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_HORIZON_DAYS,
            help="periods ahead: days, weeks (at most 104) or months (24), as the product's "
            "[default: 30, or a monthly product's 24]",
        ),
    ] = None,
    interval: Annotated[
        float | None, typer.Option(min=0.01, max=0.99, help="uncertainty interval width")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """Forecast a product from its active model, or all trained products with --all.

    A chart of it: `salescast plot`.

    `--all` writes what POST /forecasts answers (JSON, or CSV in the long shape
    with a product_id column; `table` prints one table per product), one
    product at a time. A product that cannot be forecast is named on stderr,
    the others are still written, and the exit status is 1.
    """
    if (product_id is None) == (not all_products):
        raise typer.BadParameter("give exactly one of a product ID or --all")
    if fmt in CHART_FORMATS:
        raise typer.BadParameter(
            f"a chart is drawn by `salescast plot {product_id or 'ID'} -o FILE.{fmt}`",
            param_hint="--format",
        )
    output = output_format(fmt)
    with open_service() as service:
        if product_id is not None:
            read = service.read_forecast(product_id, horizon=horizon, interval=interval)
            assert read.forecast is not None  # "not modified" needs an ETag, and none was given
            print_forecast(read.forecast, output)
            return
        errors = _forecast_all(service, output, horizon=horizon, interval=interval)
    for error in errors:
        typer.echo(f"salescast: {error.product_id}: {error.detail}", err=True)
    if errors:
        raise typer.Exit(1)


def _forecast_all(
    service: SalescastService,
    output: OutputFormat,
    *,
    horizon: int | None,
    interval: float | None,
) -> list[BatchError]:
    """Write every trained product's forecast as it is read; returns the products that failed."""
    writer = None
    if output != "table":
        writer = batch_writer(output, horizon=horizon, interval=service.interval_width(interval))
        typer.echo(writer.start(), nl=False)
    errors: list[BatchError] = []
    for product_id in service.plan_forecast_batch(None):
        try:
            read = service.read_forecast(product_id, horizon=horizon, interval=interval)
        except PER_PRODUCT_ERRORS as exc:
            errors.append(batch_error(product_id, exc))
            continue
        assert read.forecast is not None
        if writer is None:
            print_forecast(read.forecast, "table")
        else:
            typer.echo(writer.forecast(read.forecast), nl=False)
    if writer is not None:
        typer.echo(writer.end(errors), nl=False)
    return errors
