"""JobStore: background jobs as rows, so that every worker and instance answers for them."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Delete, delete, func, select, update

from salescast.store.database import Database
from salescast.store.schema import Job

JobStatus = Literal["queued", "running", "succeeded", "partial", "failed", "cancelled"]
"""A training job ends `succeeded` (no product failed), `partial` (some failed, the others
were trained or skipped), `failed` (every product failed, or the job could not run),
or `cancelled` (the server shut down)."""
UNFINISHED: tuple[JobStatus, ...] = ("queued", "running")
FINISHED: tuple[JobStatus, ...] = ("succeeded", "partial", "failed", "cancelled")
LOST_PREFIX = "the worker running this job stopped"
"""How the error of every job marked lost begins."""

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class JobOwner:
    """The process running a job: host name, pid and a random id drawn when that process began.

    The boot id tells a process apart from an earlier one that had the same
    host name and pid (a restarted container's pid 1).
    """

    host: str
    pid: int
    boot_id: str

    @classmethod
    def of_this_process(cls) -> JobOwner:
        """This process's owner; the same object for every caller until the process forks."""
        pid = os.getpid()  # keyed by pid: a forked child draws its own boot id
        with _owners_lock:
            owner = _owners.get(pid)
            if owner is None:
                owner = _owners[pid] = cls(socket.gethostname(), pid, uuid.uuid4().hex)
            return owner


_owners: dict[int, JobOwner] = {}
_owners_lock = threading.Lock()


@dataclass(frozen=True)
class JobResult:
    """What one product of a training job ended with: a new version and its metrics, or an error.

    `outcome` is "activated", "not_activated" (stored, `reason` says why it is
    not active), "skipped" (not trained, `reason` says why) or "failed".
    `note` says what happened on the way (rescheduled after a Dask worker died).
    """

    product_id: str
    version: int | None
    error: str | None
    metrics: dict[str, Any] | None
    outcome: str = "activated"
    reason: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "version": self.version,
            "error": self.error,
            "metrics": self.metrics,
            "outcome": self.outcome,
            "reason": self.reason,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> JobResult:
        error = value.get("error")
        # Rows written before outcomes were stored: every trained version was activated then.
        outcome = value.get("outcome") or ("failed" if error is not None else "activated")
        return cls(
            value["product_id"],
            value.get("version"),
            error,
            value.get("metrics"),
            outcome,
            value.get("reason"),
            value.get("note"),
        )


@dataclass(frozen=True)
class JobRecord:
    """One stored job as it was when read; times are timezone-aware UTC."""

    id: str
    kind: str
    status: JobStatus
    total: int
    done: int
    failed: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    results: tuple[JobResult, ...]
    owner: JobOwner
    heartbeat_at: dt.datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class JobStore:
    """Background jobs in the `jobs` table.

    Each method is one short transaction; nothing holds a transaction while a
    job works. Every write that changes a job is conditional on its current
    status, so a finished job (succeeded, failed, cancelled) never changes
    again: a method that finds its job finished, or gone, returns ``False``
    (or leaves it out of the ids it returns) instead of raising. Methods are
    thread-safe (each takes its own connection) and raise StoreUnavailableError
    when the database does not answer.

    Retention is by count, not age: `create_job` deletes the finished jobs
    beyond the newest `keep_finished` (by creation time) in its transaction,
    so the table stays bounded however long the service runs and however busy
    it is, and a quiet service still shows its last jobs. (Jobs that finish
    between two creations are counted at the next one.) Unfinished jobs are
    never deleted; a job whose owner died is marked failed by
    `mark_stale_lost` and then ages out like any other.

    Times come from `clock` (timezone-aware UTC). Heartbeats of different
    instances are compared with each other's clocks, so instances must agree
    on the time to well within the staleness timeout (NTP does).
    """

    def __init__(
        self, database: Database, *, keep_finished: int = 100, clock: Clock = utc_now
    ) -> None:
        if keep_finished < 0:
            raise ValueError("keep_finished must be >= 0")
        self._db = database
        self._keep_finished = keep_finished
        self._clock = clock

    def now(self) -> dt.datetime:
        return self._clock().astimezone(dt.UTC)

    # --- writes

    def create_job(self, *, kind: str, total: int, owner: JobOwner) -> JobRecord:
        """Store a new queued job owned by `owner`, then prune old finished jobs."""
        now = self.now()
        row = Job(
            id=uuid.uuid4().hex,
            kind=kind,
            status="queued",
            total=total,
            done=0,
            failed=0,
            created_at=now,
            error=None,
            results=[],
            owner_host=owner.host,
            owner_pid=owner.pid,
            owner_boot_id=owner.boot_id,
            heartbeat_at=now,
        )
        record = _record(row)
        # An INSERT and one DELETE, no read in between: a plain transaction is
        # enough on SQLite too, and concurrent prunes delete the same rows.
        with self._db.session() as session:
            session.add(row)
            session.flush()
            session.connection().execute(_prune_finished(keep=self._keep_finished))
        return record

    def start_job(self, job_id: str) -> bool:
        """queued -> running; ``False`` when the job is no longer queued."""
        now = self.now()
        values = {"status": "running", "started_at": now, "heartbeat_at": now}
        return self._update(job_id, ("queued",), values)

    def update_progress(
        self, job_id: str, *, done: int, failed: int, results: Sequence[JobResult]
    ) -> bool:
        """Record a running job's progress in one single-row UPDATE; ``False`` if it is not running.

        `results` is every product finished so far: the whole list is written each
        time, which keeps this one statement on SQLite and PostgreSQL alike.
        """
        values = {
            "done": done,
            "failed": failed,
            "results": [result.to_json() for result in results],
        }
        return self._update(job_id, ("running",), values)

    def finish_job(
        self,
        job_id: str,
        *,
        status: JobStatus,
        error: str | None = None,
        done: int | None = None,
        failed: int | None = None,
        results: Sequence[JobResult] | None = None,
    ) -> bool:
        """Give an unfinished job its final status; ``False`` when it had already finished."""
        if status not in FINISHED:
            raise ValueError(f"not a final status: {status!r}")
        values: dict[str, Any] = {"status": status, "error": error, "finished_at": self.now()}
        if done is not None:
            values["done"] = done
        if failed is not None:
            values["failed"] = failed
        if results is not None:
            values["results"] = [result.to_json() for result in results]
        return self._update(job_id, UNFINISHED, values)

    def heartbeat(self, job_ids: Collection[str]) -> int:
        """Refresh the heartbeat of those of `job_ids` that are unfinished; returns how many."""
        if not job_ids:
            return 0
        statement = (
            update(Job)
            .where(Job.id.in_(list(job_ids)), Job.status.in_(UNFINISHED))
            .values(heartbeat_at=self.now())
        )
        with self._db.session() as session:
            return session.connection().execute(statement).rowcount

    def mark_stale_lost(self, *, stale_after: dt.timedelta) -> list[str]:
        """Mark failed each unfinished job with no heartbeat for `stale_after`; returns their ids.

        Safe to run from every worker at once: a row is only marked while it
        still has the heartbeat that was found stale.
        """
        cutoff = self.now() - stale_after
        return self._mark_lost(Job.heartbeat_at < cutoff, reason="no heartbeat since {heartbeat}")

    def mark_previous_boot_lost(self, owner: JobOwner) -> list[str]:
        """Mark failed the unfinished jobs of an earlier process with `owner`'s host and pid.

        That process cannot be running any more: this one has its pid now.
        """
        return self._mark_lost(
            Job.owner_host == owner.host,
            Job.owner_pid == owner.pid,
            Job.owner_boot_id != owner.boot_id,
            reason="its process restarted; last heartbeat {heartbeat}",
        )

    # --- reads

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._db.session() as session:
            row = session.get(Job, job_id)
            return None if row is None else _record(row)

    def count_by_status(self) -> dict[str, int]:
        """How many jobs the store holds in each status (for `/metrics`)."""
        query = select(Job.status, func.count()).group_by(Job.status)
        with self._db.session() as session:
            return {status: int(count) for status, count in session.execute(query)}

    def finished_since(self, owner: JobOwner, since: dt.datetime) -> list[JobRecord]:
        """`owner`'s jobs that finished after `since`, oldest first (for `/metrics`: each
        job is counted once, by the process that ran it)."""
        query = (
            select(Job)
            .where(
                Job.owner_host == owner.host,
                Job.owner_boot_id == owner.boot_id,
                Job.finished_at.is_not(None),
                Job.finished_at > since,
            )
            .order_by(Job.finished_at)
        )
        with self._db.session() as session:
            return [_record(row) for row in session.scalars(query)]

    def list_jobs(self, *, limit: int = 20) -> list[JobRecord]:
        """The `limit` most recently created jobs, newest first."""
        query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        with self._db.session() as session:
            return [_record(row) for row in session.scalars(query)]

    # --- internals

    def _update(self, job_id: str, statuses: Sequence[str], values: dict[str, Any]) -> bool:
        statement = update(Job).where(Job.id == job_id, Job.status.in_(statuses)).values(**values)
        with self._db.session() as session:
            return session.connection().execute(statement).rowcount == 1

    def _mark_lost(self, *conditions: ColumnElement[bool], reason: str) -> list[str]:
        query = select(Job.id, Job.heartbeat_at).where(Job.status.in_(UNFINISHED), *conditions)
        with self._db.session() as session:
            candidates = session.execute(query).all()
        if not candidates:
            return []
        now = self.now()
        marked: list[str] = []
        # Each UPDATE re-checks what was read, so no read-then-write transaction
        # is needed: a job that sent a heartbeat or finished meanwhile is left alone.
        with self._db.session() as session:
            conn = session.connection()
            for job_id, heartbeat_at in candidates:
                heartbeat = _utc(heartbeat_at).isoformat(timespec="seconds")
                statement = (
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.status.in_(UNFINISHED),
                        Job.heartbeat_at == heartbeat_at,
                    )
                    .values(
                        status="failed",
                        error=f"{LOST_PREFIX} ({reason.format(heartbeat=heartbeat)})",
                        finished_at=now,
                    )
                )
                if conn.execute(statement).rowcount == 1:
                    marked.append(job_id)
        return marked


def _prune_finished(*, keep: int) -> Delete:
    finished = Job.status.in_(FINISHED)
    newest = (
        select(Job.id).where(finished).order_by(Job.created_at.desc(), Job.id.desc()).offset(keep)
    )
    return delete(Job).where(finished, Job.id.in_(newest.scalar_subquery()))


def _record(row: Job) -> JobRecord:
    return JobRecord(
        id=row.id,
        kind=row.kind,
        status=cast(JobStatus, row.status),
        total=row.total,
        done=row.done,
        failed=row.failed,
        created_at=_utc(row.created_at),
        started_at=None if row.started_at is None else _utc(row.started_at),
        finished_at=None if row.finished_at is None else _utc(row.finished_at),
        error=row.error,
        results=tuple(JobResult.from_json(value) for value in row.results),
        owner=JobOwner(row.owner_host, row.owner_pid, row.owner_boot_id),
        heartbeat_at=_utc(row.heartbeat_at),
    )


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes even for timezone=True columns; we only store UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
