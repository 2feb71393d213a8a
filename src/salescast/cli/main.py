"""`salescast` commands: serve, demo, ingest, train, products, forecast, plot, models."""

from __future__ import annotations

import dataclasses
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
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.exceptions import TyperException

import salescast
from salescast.api.product_params import ProductListParams
from salescast.cli import open_service
from salescast.cli.cache_commands import ServerError, cache_app
from salescast.cli.forecast_command import forecast
from salescast.cli.model_commands import models_app
from salescast.cli.output import output_format, page_summary, print_products
from salescast.cli.plot_command import plot
from salescast.config import SettingsError, load_settings, parse_scheduler_address
from salescast.forecasting import ForecastingError, ModelVersionInfo
from salescast.forecasting.dask_batch import DaskScheduler
from salescast.forecasting.model_codec import ModelDecodeError
from salescast.service import SalescastService, TrainingSummary, dask_scheduler_from
from salescast.store import StoreError
from salescast.store.frequency import parse_frequency
from salescast.store.ingest import ColumnSpec, IngestError
from salescast.store.product_listing import DEFAULT_LIMIT, MAX_LIMIT
from salescast.store.sales import IngestMode

app = typer.Typer(
    name="salescast",
    help="Sales forecasting: ingest sales, train one Prophet model per product, forecast.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # click's plain help: rich help labels every flag `<bool>` and boxes each section
    rich_markup_mode=None,
)

app.add_typer(cache_app, name="cache")
app.add_typer(models_app, name="models")
app.command()(forecast)
app.command()(plot)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"salescast {salescast.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sales forecasting: ingest sales, train one Prophet model per product, forecast."""


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
    with open_service() as service:
        loaded = service.load_demo_if_empty()
        if loaded is not None:
            typer.echo(f"loaded demo data: {loaded.rows} rows, {len(loaded.products)} products")
        untrained = service.list_untrained_product_ids()
        if untrained:
            summaries = _train_with_progress(
                service,
                untrained,
                jobs=service.settings.train_jobs,
                scheduler=dask_scheduler_from(service.settings),
            )
            _report_failures(summaries)
        typer.echo(f"store ready: {service.settings.database_url}")


def _report_failures(summaries: Sequence[TrainingSummary]) -> None:
    """Name the products that could not be trained, with the reason, on stderr.

    The demo still ends with status 0: the store is usable (`make run` goes on
    to serve), and the failed products answer 409 until trained.
    """
    failed = [s for s in summaries if s.outcome == "failed"]
    if failed:
        typer.echo(f"{len(failed)} of {len(summaries)} products failed to train:", err=True)
        for summary in failed:
            _echo_summary(summary)
    typer.echo(describe_training(summaries))


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
    with open_service() as service:
        result = service.ingest_csv(
            file.read_bytes(), columns=columns, mode=mode_value, freq=declared
        )
    typer.echo(f"ingested {result.rows} rows for {len(result.products)} products")


@app.command()
def train(
    product: Annotated[str | None, typer.Option(help="train this product")] = None,
    all_products: Annotated[bool, typer.Option("--all", help="train every product")] = False,
    jobs: Annotated[
        int | None, typer.Option(min=1, max=64, help="local processes in parallel")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="with --all: train on this Dask scheduler, tcp://HOST:PORT "
            "[SALESCAST_DASK_SCHEDULER]"
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="with --all: also train products whose data is unchanged"),
    ] = False,
) -> None:
    """Train models; a new version is activated unless pinned or worse (see `models`).

    `--all` trains, with a progress bar, the products whose data changed since
    their newest version (every product with `--force`): on the Dask cluster
    of `--scheduler` or SALESCAST_DASK_SCHEDULER when given (`--jobs N` asks
    for the local pool instead), else in local processes.
    """
    if (product is None) == (not all_products):
        raise typer.BadParameter("give exactly one of --product ID or --all")
    if scheduler is not None and (product is not None or jobs is not None):
        raise typer.BadParameter(
            "goes with --all, without --jobs (the cluster's workers train)",
            param_hint="--scheduler",
        )
    if scheduler is not None:
        try:
            scheduler = parse_scheduler_address(scheduler)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--scheduler") from None
    with open_service() as service:
        if product is not None:  # one named product is always trained: --force changes nothing
            _echo_version(service.train_product(product))
            return
        summaries = _train_with_progress(
            service,
            service.list_product_ids(),
            jobs=jobs or service.settings.train_jobs,
            scheduler=None if jobs is not None else _scheduler(service, scheduler),
            force=force,
        )
    for s in summaries:
        _echo_summary(s)
    typer.echo(describe_training(summaries))
    if any(s.outcome == "failed" for s in summaries):
        raise typer.Exit(1)


def _scheduler(service: SalescastService, option: str | None) -> DaskScheduler | None:
    """The cluster of `--scheduler`, else of SALESCAST_DASK_SCHEDULER, else None (local)."""
    if option is None:
        return dask_scheduler_from(service.settings)
    return DaskScheduler(
        option,
        named_by="--scheduler",
        connect_timeout_seconds=service.settings.dask_connect_timeout_seconds,
    )


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
    if summary.note is not None:
        typer.echo(f"{summary.product_id}: {summary.note}")


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
    service: SalescastService,
    ids: list[str],
    *,
    jobs: int,
    scheduler: DaskScheduler | None = None,
    force: bool = False,
) -> list[TrainingSummary]:
    """Train `ids` as one batch; the bar advances as each product ends (on a cluster too,
    in the order its futures complete), failures included."""
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

        return service.train_products(
            ids, force=force, jobs=jobs, scheduler=scheduler, on_progress=advance
        )


@app.command()
def products(
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="products per page (1-1000)")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, typer.Option(min=0, help="products to skip")] = 0,
    all_products: Annotated[bool, typer.Option("--all", help="every match, no paging")] = False,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="case-insensitive part of the id")
    ] = None,
    freq: Annotated[
        str | None, typer.Option("--freq", help="only this frequency: D, W-MON ... W-SUN, MS, ME")
    ] = None,
    has_model: Annotated[
        bool | None,
        typer.Option("--has-model/--no-model", help="only products with / without a model"),
    ] = None,
    worse_than_naive: Annotated[
        bool,
        typer.Option("--worse-than-naive", help="only models whose MASE is above seasonal-naive's"),
    ] = False,
    sort: Annotated[
        str, typer.Option(help="id, sales_days, mase or mase_vs_naive; '-' first: descending")
    ] = "id",
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """List products: sales days, date range, active version and its backtest MASE.

    Pages like GET /products (100 a page; the range and the next --offset go to
    stderr); --all lists every match.
    """
    output = output_format(fmt)
    try:
        params = ProductListParams(
            limit=limit,
            offset=offset,
            q=search,
            freq=freq,
            has_model=has_model,
            worse_than_naive=worse_than_naive or None,
            sort=sort,  # checked by the model: an unknown key is a ValidationError
        )
    except ValidationError as exc:
        raise typer.BadParameter(_first_problem(exc)) from None
    query = params.to_query()
    if all_products:
        query = dataclasses.replace(query, limit=None)
    with open_service() as service:
        page = service.store.find_products(query)
    print_products(page.products, output)
    typer.echo(page_summary(page), err=True)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = {"q": "search"}.get(str(error["loc"][0]), str(error["loc"][0]))
    return f"--{name.replace('_', '-')}: {error['msg']}"


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
