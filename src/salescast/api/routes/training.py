"""Training one product now, or many in a background job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, status

from salescast.api.auth import AdminOnly
from salescast.api.dependencies import Jobs, Service
from salescast.api.jobs import JobRecord
from salescast.api.routes.models import to_model
from salescast.api.schemas import (
    ADMIN_ERRORS,
    ErrorResponse,
    JobModel,
    JobOwnerModel,
    ModelVersionModel,
    TrainingSummaryModel,
    TrainRequest,
)

router = APIRouter(tags=["training"])


@router.post(
    "/products/{product_id}/train",
    response_model=ModelVersionModel,
    status_code=status.HTTP_201_CREATED,
    dependencies=AdminOnly,
    responses={
        **ADMIN_ERRORS,
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse, "description": "too little history to train"},
    },
)
def train_product(product_id: str, service: Service) -> ModelVersionModel:
    """Train and store a new version, activated unless pinned or worse; returns it and its
    metrics (`active`, `not_activated_reason`)."""
    return to_model(service.train_product(product_id))


@router.post(
    "/train",
    response_model=JobModel,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=AdminOnly,
    responses={
        **ADMIN_ERRORS,
        400: {"model": ErrorResponse, "description": "the body is not JSON"},
        404: {"model": ErrorResponse},
    },
)
def train_many(
    service: Service,
    jobs: Jobs,
    request: Annotated[TrainRequest | None, Body()] = None,
    force: Annotated[
        bool, Query(description="also train products unchanged since their newest version")
    ] = False,
) -> JobModel:
    """Start training all (or the listed) products whose data changed as a background job
    (`force` for all); poll /jobs/{id}."""
    # Unknown ids answer 404 now rather than as a failed job later.
    listed = request.product_ids if request and request.product_ids else None  # [] means all
    ids = service.resolve_products(listed)
    forced = force or (request is not None and request.force)
    return job_model(jobs.submit_training(ids, force=forced))


MAX_JOBS_LISTED = 100
"""Upper bound of `GET /jobs?limit=`; the store keeps about as many finished jobs."""


@router.get("/jobs", response_model=list[JobModel])
def list_jobs(
    jobs: Jobs,
    limit: Annotated[int, Query(ge=1, le=MAX_JOBS_LISTED, description="how many")] = 20,
) -> list[JobModel]:
    """Recent background jobs of every worker and instance, newest first."""
    return [job_model(job) for job in jobs.list_recent(limit=limit)]


@router.get("/jobs/{job_id}", response_model=JobModel, responses={404: {"model": ErrorResponse}})
def get_job(job_id: str, jobs: Jobs) -> JobModel:
    """Progress and results of a background job, whichever worker or instance runs it."""
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown job {job_id!r}")
    return job_model(job)


def job_model(job: JobRecord) -> JobModel:
    return JobModel(
        id=job.id,
        kind=job.kind,
        status=job.status,
        total=job.total,
        done=job.done,
        failed=job.failed,
        skipped=sum(result.outcome == "skipped" for result in job.results),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        results=[TrainingSummaryModel(**vars(result)) for result in job.results],
        owner=JobOwnerModel(host=job.owner.host, pid=job.owner.pid),
        heartbeat_at=job.heartbeat_at,
    )
