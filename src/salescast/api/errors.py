"""Domain errors to HTTP answers in one place: JSON `{"detail": ...}`, never a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from salescast.compute_gate import ComputeBusyError
from salescast.forecasting import (
    HorizonError,
    InsufficientHistoryError,
    ModelVersionInUseError,
    ModelVersionNotFoundError,
    NoActiveModelError,
)
from salescast.forecasting.model_codec import ModelDecodeError
from salescast.store import ProductNotFoundError
from salescast.store.errors import StoreUnavailableError
from salescast.store.frequency import FrequencyError
from salescast.store.ingest import IngestError

logger = logging.getLogger("salescast.api")


class UploadTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"upload larger than the limit of {limit} bytes (SALESCAST_MAX_UPLOAD_BYTES)"
        )


def _detail(code: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=code)


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return _detail(status.HTTP_404_NOT_FOUND, str(exc))


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return _detail(status.HTTP_409_CONFLICT, str(exc))


async def _unprocessable(_: Request, exc: Exception) -> JSONResponse:
    return _detail(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


async def _too_large(_: Request, exc: Exception) -> JSONResponse:
    return _detail(status.HTTP_413_CONTENT_TOO_LARGE, str(exc))


async def _ingest_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IngestError)
    problems = [
        {"line": p.line, "unit": p.unit, "column": p.column, "reason": p.reason}
        for p in exc.problems
    ]
    detail = {"message": str(exc).splitlines()[0], "total": exc.total, "problems": problems}
    return JSONResponse({"detail": detail}, status_code=status.HTTP_400_BAD_REQUEST)


async def _corrupt_model(_: Request, exc: Exception) -> JSONResponse:
    # A stored model that does not decode is our fault, not the caller's: say so
    # plainly with 503 and log it, rather than a bare 500.
    logger.error("stored model failed to decode: %s", exc)
    return _detail(status.HTTP_503_SERVICE_UNAVAILABLE, "the stored model could not be read")


async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The database is down, restarting or unreachable: the request changed
    # nothing and may be sent again. 503 with Retry-After, never a bare 500.
    logger.warning("store unavailable: %s", exc)
    return JSONResponse(
        {"detail": str(exc)},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


async def _busy(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ComputeBusyError)
    return JSONResponse(
        {"detail": str(exc)},
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProductNotFoundError, _not_found)
    app.add_exception_handler(ModelVersionNotFoundError, _not_found)
    app.add_exception_handler(NoActiveModelError, _conflict)
    app.add_exception_handler(ModelVersionInUseError, _conflict)
    app.add_exception_handler(InsufficientHistoryError, _unprocessable)
    app.add_exception_handler(UploadTooLargeError, _too_large)
    app.add_exception_handler(IngestError, _ingest_error)
    app.add_exception_handler(FrequencyError, _unprocessable)
    app.add_exception_handler(HorizonError, _unprocessable)
    app.add_exception_handler(ModelDecodeError, _corrupt_model)
    app.add_exception_handler(ComputeBusyError, _busy)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable)
