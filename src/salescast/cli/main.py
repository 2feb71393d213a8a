"""`salescast` commands: serve, demo, ingest, train, products, forecast, models."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.exceptions import TyperException

from salescast.cli.cache_commands import ServerError, cache_app
from salescast.cli.model_commands import models, output_format
from salescast.cli.output import print_forecast, print_products
from salescast.config import SettingsError, load_settings
from salescast.forecasting import ForecastingError, ModelVersionInfo
from salescast.forecasting.model_codec import ModelDecodeError
from salescast.forecasting.prediction import MAX_HORIZON_DAYS
from salescast.service import SalescastService, TrainingSummary
from salescast.store import StoreError
from salescast.store.frequency import parse_frequency
from salescast.store.ingest import ColumnSpec, IngestError
from salescast.store.sales import IngestMode

app = typer.Typer(
    name="salescast",
    help="Sales forecasting: ingest sales, train one Prophet model per product, forecast.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.add_typer(cache_app, name="cache")
app.command(context_settings={"ignore_unknown_options": False})(models)

# Errors a user can cause and fix: printed as one reason line, exit status 1.
USER_ERRORS = (
    StoreError,
    ForecastingError,
    IngestError,
    ModelDecodeError,
    ServerError,
    OSError,
    ValueError,
)


def _service() -> SalescastService:
    return SalescastService(load_settings())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address [SALESCAST_HOST]")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="[SALESCAST_PORT]")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); several workers share one Redis."""
    import uvicorn

    settings = load_settings()  # fail here, with the variable's name, not in a worker
    with _multiprocess_metrics(workers):
        uvicorn.run(
            "salescast.api.app:create_app_from_env",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_level="info",
        )


@contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[None]:
    """With several workers, give prometheus-client a fresh shared folder (removed after)."""
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="salescast-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@app.command()
def demo() -> None:
    """Load the bundled demo sales if the store is empty, then train untrained products."""
    service = _service()
    loaded = service.load_demo_if_empty()
    if loaded is not None:
        typer.echo(f"loaded demo data: {loaded.rows} rows, {len(loaded.products)} products")
    untrained = service.list_untrained_product_ids()
    if untrained:
        _train_with_progress(service, untrained, jobs=service.settings.train_jobs)
    typer.echo(f"store ready: {service.settings.database_url}")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    date_col: Annotated[str, typer.Option(help="column holding the ISO date")] = "date",
    product_col: Annotated[str, typer.Option(help="column holding the product id")] = "product_id",
    product_cols: Annotated[
        str | None,
        typer.Option(help="several columns forming the id: store_id,dept_id"),
    ] = None,
    quantity_col: Annotated[str, typer.Option(help="column holding units sold")] = "quantity",
    mode: Annotated[
        str, typer.Option(help="append: reject days already stored; replace: overwrite them")
    ] = "append",
    freq: Annotated[
        str | None,
        typer.Option(
            help="D, W-MON ... W-SUN, MS or ME: sum the rows into these periods "
            "(default: detected from a new product's dates)"
        ),
    ] = None,
) -> None:
    """Load sales from a CSV file, all rows or none."""
    if mode not in ("append", "replace"):
        raise typer.BadParameter("must be 'append' or 'replace'", param_hint="--mode")
    declared = None
    if freq is not None:
        try:
            declared = parse_frequency(freq)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--freq") from None
    product = tuple(c.strip() for c in (product_cols or product_col).split(","))
    columns = ColumnSpec(date=date_col, product=product, quantity=quantity_col)
    mode_value: IngestMode = "append" if mode == "append" else "replace"
    result = _service().ingest_csv(
        file.read_bytes(), columns=columns, mode=mode_value, freq=declared
    )
    typer.echo(f"ingested {result.rows} rows for {len(result.products)} products")


@app.command()
def train(
    product: Annotated[str | None, typer.Option(help="train this product")] = None,
    all_products: Annotated[bool, typer.Option("--all", help="train every product")] = False,
    jobs: Annotated[int | None, typer.Option(min=1, max=64, help="processes in parallel")] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="with --all: also train products whose data is unchanged"),
    ] = False,
) -> None:
    """Train models; a new version is activated unless pinned or worse (see `models`).

    `--all` trains, with a progress bar, the products whose data changed since
    their newest version (every product with `--force`).
    """
    if (product is None) == (not all_products):
        raise typer.BadParameter("give exactly one of --product ID or --all")
    service = _service()
    if product is not None:  # one named product is always trained: --force changes nothing
        _echo_version(service.train_product(product))
        return
    ids = service.list_product_ids()
    summaries = _train_with_progress(
        service, ids, jobs=jobs or service.settings.train_jobs, force=force
    )
    for s in summaries:
        _echo_summary(s)
    typer.echo(describe_training(summaries))
    if any(s.outcome == "failed" for s in summaries):
        raise typer.Exit(1)


def _echo_version(info: ModelVersionInfo) -> None:
    if info.active:
        typer.echo(
            f"{info.product_id}: version {info.version} active, MASE {info.metrics.get('mase')}"
        )
    else:
        typer.echo(
            f"{info.product_id}: version {info.version} stored, not activated: "
            f"{info.not_activated_reason}"
        )


def _echo_summary(summary: TrainingSummary) -> None:
    if summary.outcome == "failed":
        typer.echo(f"{summary.product_id}: {summary.error}", err=True)
    elif summary.outcome == "not_activated":
        typer.echo(
            f"{summary.product_id}: version {summary.version} stored, not activated: "
            f"{summary.reason}"
        )
    elif summary.outcome == "skipped":
        typer.echo(f"{summary.product_id}: skipped: {summary.reason}")


def describe_training(summaries: Sequence[TrainingSummary]) -> str:
    """The last line of `train --all`: how many products ended each way."""
    count = Counter(s.outcome for s in summaries)
    trained = count["activated"] + count["not_activated"]
    return (
        f"trained {trained} of {len(summaries)} products ({count['activated']} activated, "
        f"{count['not_activated']} not activated), {count['skipped']} skipped as unchanged, "
        f"{count['failed']} failed"
    )


def _train_with_progress(
    service: SalescastService, ids: list[str], *, jobs: int, force: bool = False
) -> list[TrainingSummary]:
    columns = (
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("", total=len(ids))

        def advance(done: int, _total: int, summary: TrainingSummary) -> None:
            progress.update(task, completed=done, description=summary.product_id)

        return service.train_products(ids, force=force, jobs=jobs, on_progress=advance)


@app.command()
def products(
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """List products: frequency, sales days, date range, active model version."""
    output = output_format(fmt)
    print_products(_service().store.list_products(), output)


@app.command()
def forecast(
    product_id: Annotated[str, typer.Argument(help="product id")],
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
    """Forecast a product from its active model."""
    output = output_format(fmt)
    read = _service().read_forecast(product_id, horizon=horizon, interval=interval)
    assert read.forecast is not None  # "not modified" needs an ETag, and none was given
    print_forecast(read.forecast, output)


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit status."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except TyperException as exc:  # usage errors (typer's own click exceptions): status 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"salescast: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    except SettingsError as exc:
        sys.exit(f"salescast: {exc}")
    except USER_ERRORS as exc:
        sys.exit(f"salescast: {exc}")
    sys.exit(code if isinstance(code, int) else 0)
