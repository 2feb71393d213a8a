"""The app's OpenAPI document, for tests that parametrize themselves from it at collection."""

from __future__ import annotations

from typing import Any

from salescast.api.app import create_app
from salescast.config import Settings
from salescast.service import SalescastService

WRITE_METHODS = ("post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    """The schema of an app over an in-memory store (the schema does not depend on the data)."""
    settings = Settings(_env_file=None, database_url="sqlite://", warmup_on_startup=False)  # type: ignore[call-arg]
    service = SalescastService(settings)
    try:
        return create_app(settings, service=service).openapi()
    finally:
        service.close()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, operation) of the document, in document order."""
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "head", "options", *WRITE_METHODS)
    ]
