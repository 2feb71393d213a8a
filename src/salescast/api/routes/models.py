"""Model versions of a product: list, promote or roll back (pinning), unpin, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from salescast.api.auth import AdminOnly
from salescast.api.dependencies import Service
from salescast.api.schemas import ADMIN_ERRORS, ErrorResponse, ModelVersionModel
from salescast.forecasting import ModelVersionInfo
from salescast.forecasting.registry import MAX_VERSION

router = APIRouter(tags=["models"])

Version = Annotated[int, Path(ge=1, le=MAX_VERSION)]


def to_model(info: ModelVersionInfo) -> ModelVersionModel:
    return ModelVersionModel(**vars(info))


@router.get(
    "/products/{product_id}/models",
    response_model=list[ModelVersionModel],
    responses={404: {"model": ErrorResponse}},
)
def list_models(product_id: str, service: Service) -> list[ModelVersionModel]:
    """Versions with created time, data window, metrics, which one is active and pinned."""
    return [to_model(info) for info in service.list_models(product_id)]


@router.post(
    "/products/{product_id}/models/unpin",
    response_model=ModelVersionModel,
    dependencies=AdminOnly,
    responses={
        **ADMIN_ERRORS,
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse, "description": "the product has no active version"},
    },
)
def unpin_model(product_id: str, service: Service) -> ModelVersionModel:
    """Let trainings activate new versions again; the active version stays active until then."""
    return to_model(service.unpin_model(product_id))


@router.post(
    "/products/{product_id}/models/{version}/activate",
    response_model=ModelVersionModel,
    dependencies=AdminOnly,
    responses={
        **ADMIN_ERRORS,
        404: {"model": ErrorResponse},
    },
)
def activate_model(product_id: str, version: Version, service: Service) -> ModelVersionModel:
    """Make an existing version active (promote or roll back) and pin it."""
    return to_model(service.activate_model(product_id, version))


@router.delete(
    "/products/{product_id}/models/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=AdminOnly,
    responses={
        **ADMIN_ERRORS,
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse, "description": "the version is active (or pinned)"},
    },
)
def delete_model(product_id: str, version: Version, service: Service) -> Response:
    """Remove a version that is neither active nor pinned, and its cached entries."""
    service.delete_model(product_id, version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
