"""Cache monitoring and administration: status, statistics, warm-up, clearing, invalidation."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from salescast.api.auth import AdminOnly
from salescast.api.dependencies import Service
from salescast.api.schemas import (
    ADMIN_ERRORS,
    CacheClearResponse,
    CacheStatsResponse,
    CacheStatusResponse,
    ErrorResponse,
    ProductInvalidatedResponse,
    WarmupResponse,
    WorkerModel,
)
from salescast.cache import product_tag
from salescast.warmup import Warmup

router = APIRouter(prefix="/cache", tags=["cache"])

Namespace = Literal["model", "prediction", "data", "plot"]


def _warmup(request: Request) -> Warmup:
    warmup: Warmup = request.app.state.warmup
    return warmup


def _worker(service: Service) -> WorkerModel:
    return WorkerModel(pid=os.getpid(), cache_instance=service.cache.instance_id)


@router.get("/status", response_model=CacheStatusResponse)
def cache_status(service: Service, request: Request) -> CacheStatusResponse:
    """Backend, Redis reachability and latency, breaker, L1 size, subscription, warm-up."""
    health = service.cache.health().as_dict()
    return CacheStatusResponse(
        worker=_worker(service), warmup=_warmup(request).progress(), **health
    )


@router.get("/stats", response_model=CacheStatsResponse)
def cache_stats(service: Service) -> CacheStatsResponse:
    """Hits per tier, misses, hit rate, sets, errors, evictions, bytes, latency; this worker."""
    stats = service.cache.stats().as_dict()
    gate = service.gate.snapshot()
    return CacheStatsResponse(worker=_worker(service), compute=vars(gate), **stats)


@router.post(
    "/warmup",
    response_model=WarmupResponse,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=AdminOnly,
    responses=ADMIN_ERRORS,
)
def start_warmup(request: Request) -> WarmupResponse:
    """Start warming the cache (models and default forecasts of the busiest products)."""
    warmup = _warmup(request)
    started = warmup.start()
    return WarmupResponse(started=started, warmup=warmup.progress())


@router.delete(
    "/clear",
    response_model=CacheClearResponse,
    dependencies=AdminOnly,
    responses={**ADMIN_ERRORS, 404: {"model": ErrorResponse}},
)
def clear_cache(
    service: Service,
    namespace: Annotated[Namespace | None, Query(description="only this namespace")] = None,
    product: Annotated[str | None, Query(description="only this product's entries")] = None,
) -> CacheClearResponse:
    """Remove this service's cache entries (L1 in every worker and Redis); nothing else."""
    if product is not None:
        service.store.get_product(product)  # 404 for a typo rather than a silent no-op
    removed = service.cache.clear(
        namespace=namespace, tag=product_tag(product) if product is not None else None
    )
    return CacheClearResponse(removed=removed, namespace=namespace, product_id=product)


@router.delete(
    "/products/{product_id}",
    response_model=ProductInvalidatedResponse,
    dependencies=AdminOnly,
    responses={**ADMIN_ERRORS, 404: {"model": ErrorResponse}},
)
def invalidate_product(product_id: str, service: Service) -> ProductInvalidatedResponse:
    """Make every cached entry of one product unreachable, in every worker."""
    service.store.get_product(product_id)
    generation = service.cache.invalidate_tag(product_tag(product_id))
    return ProductInvalidatedResponse(product_id=product_id, generation=generation)
