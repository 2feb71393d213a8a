"""`salescast models`: list a product's versions; activate (pin), unpin, delete, prune them.

`models ID` lists (the form users know), and each action is a subcommand with
its own help (`salescast models activate --help`). A click group cannot have
both a positional ID and subcommands, so `ListByDefaultGroup` reads a first
word that names no subcommand as the ID of an implicit `list`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from salescast.cli import open_service
from salescast.cli.output import output_format, print_models


class ListByDefaultGroup(TyperGroup):
    """A group where `models ID ...` means `models list ID ...`."""

    # `ctx` is typer's own (vendored) click Context, which it does not export.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        first_word = next((a for a in args if not a.startswith("-")), None)
        if first_word is not None and first_word not in self.commands:
            args = ["list", *args]
        return super().parse_args(ctx, args)


models_app = typer.Typer(
    cls=ListByDefaultGroup,
    help="List a product's model versions (`models ID`), or manage them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv")]


@models_app.command("list")
def list_versions(
    product_id: Annotated[str, typer.Argument(metavar="ID", help="product id")],
    fmt: FormatOption = "table",
) -> None:
    """Versions, windows and metrics; which is active, which pinned (also: `models ID`)."""
    output = output_format(fmt)
    with open_service() as service:
        print_models(service.list_models(product_id), output)


@models_app.command()
def activate(
    product_id: Annotated[str, typer.Argument(metavar="ID", help="product id")],
    version: Annotated[int, typer.Argument(metavar="VERSION", min=1, help="version number")],
) -> None:
    """Promote or roll back to VERSION and pin it: trainings then leave it active."""
    with open_service() as service:
        info = service.activate_model(product_id, version)
    typer.echo(f"{info.product_id}: version {info.version} is active and pinned")


@models_app.command()
def unpin(product_id: Annotated[str, typer.Argument(metavar="ID", help="product id")]) -> None:
    """Let trainings activate new versions again; the active version stays active."""
    with open_service() as service:
        info = service.unpin_model(product_id)
    typer.echo(
        f"{info.product_id}: version {info.version} stays active, not pinned: "
        "the next training may activate a new version"
    )


@models_app.command()
def delete(
    product_id: Annotated[str, typer.Argument(metavar="ID", help="product id")],
    version: Annotated[int, typer.Argument(metavar="VERSION", min=1, help="version number")],
) -> None:
    """Remove VERSION, which must be neither active nor pinned."""
    with open_service() as service:
        service.delete_model(product_id, version)
    typer.echo(f"{product_id}: version {version} deleted")


PRUNE_USAGE = "usage: salescast models prune (ID | --all) --keep N"


@models_app.command()
def prune(
    product_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="product id (or --all)")
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(min=1, help="the newest versions to keep (the active one is kept too)"),
    ] = None,
    all_products: Annotated[bool, typer.Option("--all", help="every product")] = False,
) -> None:
    """Keep the N newest versions of a product (or of all) and the active one; delete the rest."""
    if keep is None or all_products == (product_id is not None):
        raise typer.BadParameter(PRUNE_USAGE)
    ids = None if product_id is None else [product_id]
    with open_service() as service:
        deleted = service.prune_models(ids, keep=keep)
    for pid, versions in deleted.items():
        if versions:
            typer.echo(f"{pid}: deleted versions {', '.join(map(str, versions))}")
    total = sum(len(versions) for versions in deleted.values())
    kept = f"kept the {keep} newest and the active one"
    typer.echo(f"deleted {total} versions of {len(deleted)} products ({kept})")
