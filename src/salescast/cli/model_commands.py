"""`salescast models`: list a product's versions; activate (pin), unpin, delete, prune them."""

from __future__ import annotations

from typing import Annotated

import typer

from salescast.cli.output import OutputFormat, print_models
from salescast.config import load_settings
from salescast.service import SalescastService

MODELS_USAGE = "ID | activate ID VERSION | unpin ID | delete ID VERSION | prune (ID | --all)"


def models(
    args: Annotated[list[str], typer.Argument(metavar=MODELS_USAGE)],
    keep: Annotated[
        int | None,
        typer.Option(min=1, help="prune: the newest versions to keep (the active one is kept too)"),
    ] = None,
    all_products: Annotated[bool, typer.Option("--all", help="prune: every product")] = False,
    fmt: Annotated[str, typer.Option("--format", help="listing: table, json or csv")] = "table",
) -> None:
    """List a product's model versions, or manage them.

    `activate ID VERSION` promotes or rolls back and pins the version (trainings
    then leave it active); `unpin ID` lets trainings activate again; `delete ID
    VERSION` removes a version that is not active; `prune ID --keep N` (or
    `prune --all --keep N`) keeps the N newest versions and the active one.
    """
    action, rest = (args[0], args[1:]) if args[0] in _MODEL_ACTIONS else ("list", args)
    if action != "prune" and (keep is not None or all_products):
        raise typer.BadParameter("--keep and --all go with `models prune`")
    if action == "prune":
        _prune(rest, keep=keep, all_products=all_products)
        return
    service = SalescastService(load_settings())
    if action == "list":
        if len(rest) != 1:
            raise typer.BadParameter(f"usage: salescast models {MODELS_USAGE}")
        print_models(service.list_models(rest[0]), output_format(fmt))
    elif action == "activate":
        product_id, version = _product_and_version(rest, "activate")
        info = service.activate_model(product_id, version)
        typer.echo(f"{info.product_id}: version {info.version} is active and pinned")
    elif action == "unpin":
        if len(rest) != 1:
            raise typer.BadParameter("usage: salescast models unpin ID")
        info = service.unpin_model(rest[0])
        typer.echo(
            f"{info.product_id}: version {info.version} stays active, not pinned: "
            "the next training may activate a new version"
        )
    else:
        product_id, version = _product_and_version(rest, "delete")
        service.delete_model(product_id, version)
        typer.echo(f"{product_id}: version {version} deleted")


_MODEL_ACTIONS = ("activate", "unpin", "delete", "prune")


def _product_and_version(rest: list[str], action: str) -> tuple[str, int]:
    if len(rest) != 2 or not rest[1].isdigit():
        raise typer.BadParameter(f"usage: salescast models {action} ID VERSION")
    return rest[0], int(rest[1])


def _prune(rest: list[str], *, keep: int | None, all_products: bool) -> None:
    if keep is None or all_products == bool(rest) or len(rest) > 1:
        raise typer.BadParameter("usage: salescast models prune (ID | --all) --keep N")
    deleted = SalescastService(load_settings()).prune_models(rest or None, keep=keep)
    for product_id, versions in deleted.items():
        if versions:
            typer.echo(f"{product_id}: deleted versions {', '.join(map(str, versions))}")
    total = sum(len(versions) for versions in deleted.values())
    kept = f"kept the {keep} newest and the active one"
    typer.echo(f"deleted {total} versions of {len(deleted)} products ({kept})")


def output_format(fmt: str) -> OutputFormat:
    if fmt not in ("table", "json", "csv"):
        raise typer.BadParameter("must be table, json or csv", param_hint="--format")
    return "json" if fmt == "json" else "csv" if fmt == "csv" else "table"
