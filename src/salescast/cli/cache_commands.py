"""`salescast cache ...`: a client of the running server's /cache endpoints.

Cache statistics live in the server's worker processes, not in the CLI, so
these commands ask the server over HTTP (default `http://SALESCAST_HOST:PORT`,
the admin token from `SALESCAST_ADMIN_TOKEN` for warm-up and clear).

They print the server's JSON answer by default (scripts read it, as they did
before `--format` existed); `--format table` or `csv` shows the same fields
one a row (`cache stats`: one namespace a row).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any

import typer

from salescast.cli.output import output_format, print_cache_stats, print_document
from salescast.config import load_settings

cache_app = typer.Typer(
    help="Cache status, statistics, warm-up and clearing (via the server).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

UrlOption = Annotated[
    str | None, typer.Option("--url", help="server base URL [http://SALESCAST_HOST:PORT]")
]
FormatOption = Annotated[str, typer.Option("--format", help="json (the default), table or csv")]


class ServerError(Exception):
    """The server could not be reached or answered with an error."""


def _call(method: str, path: str, url: str | None, params: dict[str, str] | None = None) -> Any:
    settings = load_settings()
    base = url or f"http://{settings.host}:{settings.port}"
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    request = urllib.request.Request(f"{base.rstrip('/')}{path}{query}", method=method)  # noqa: S310  (the URL is the operator's own server)
    if settings.admin_token is not None:
        request.add_header("Authorization", f"Bearer {settings.admin_token.get_secret_value()}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  (see above)
            return json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ServerError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServerError(f"cannot reach the server at {base}: {exc}") from None


@cache_app.command("status")
def status(url: UrlOption = None, fmt: FormatOption = "json") -> None:
    """Backend, Redis reachability, breaker, L1 size, warm-up progress."""
    output = output_format(fmt)
    print_document(_call("GET", "/cache/status", url), output)


@cache_app.command("stats")
def stats(url: UrlOption = None, fmt: FormatOption = "json") -> None:
    """Per-namespace hits, misses, hit rate, bytes and latency (of the worker that answers)."""
    output = output_format(fmt)
    print_cache_stats(_call("GET", "/cache/stats", url), output)


@cache_app.command("warmup")
def warmup(url: UrlOption = None, fmt: FormatOption = "json") -> None:
    """Start a warm-up of the busiest products' models and forecasts."""
    output = output_format(fmt)
    print_document(_call("POST", "/cache/warmup", url), output)


@cache_app.command("clear")
def clear(
    namespace: Annotated[str | None, typer.Option(help="model, prediction, data or plot")] = None,
    product: Annotated[str | None, typer.Option(help="only this product's entries")] = None,
    url: UrlOption = None,
    fmt: FormatOption = "json",
) -> None:
    """Remove this service's cached entries (all, one namespace, or one product)."""
    output = output_format(fmt)
    params = {k: v for k, v in (("namespace", namespace), ("product", product)) if v is not None}
    print_document(_call("DELETE", "/cache/clear", url, params), output)
