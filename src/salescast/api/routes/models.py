"""Model versions of a product: list, promote, roll back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from salescast.api.auth import AdminOnly
from salescast.api.dependencies import Service
from salescast.api.schemas import ADMIN_ERRORS, ErrorResponse, ModelVersionModel
from salescast.forecasting import ModelVersionInfo
from salescast.forecasting.registry import MAX_VERSION

router = APIRouter(tags=["models"])


def to_model(info: ModelVersionInfo) -> ModelVersionModel:
    return ModelVersionModel(**vars(info))


@router.get(
    "/products/{product_id}/models",
    response_model=list[ModelVersionModel],
    responses={404: {"model": ErrorResponse}},
)
def list_models(product_id: str, service: Service) -> list[ModelVersionModel]:
    """Versions with created time, data window, metrics, and which one is active."""
    return [to_model(info) for info in service.list_models(product_id)]


@router.post(
    "/products/{product_id}/models/{version}/activate",
    response_model=ModelVersionModel,
    dependencies=AdminOnly,
    responses={
        **ADMIN_ERRORS,
        404: {"model": ErrorResponse},
    },
)
def activate_model(
    product_id: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], service: Service
) -> ModelVersionModel:
    """Make an existing version active (promote or roll back)."""
    return to_model(service.activate_model(product_id, version))
