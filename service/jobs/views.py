"""Reading jobs for clients: ORM rows to the response schemas, owner-scoped lookups.

Shared by the REST routes and the SSE stream. Every lookup opens and closes its own short
session, so a long-lived SSE response never holds a database transaction open.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import Database
from service.errors import NotFound
from service.jobs import batch_predict
from service.jobs.lr_range import is_range_test, stored_result
from service.models import JobStatus, MetricPoint, Model, ModelVersion, SweepTrial, TrainingJob
from service.schemas.diagnostics import TrainingWarning
from service.schemas.jobs import (
    EpochMetrics,
    JobBatchReport,
    JobKind,
    JobLinks,
    JobResponse,
    LRRangeReport,
    ModelVersionRef,
    Progress,
    ProgressEvent,
)

JOBS_PATH = "/v1/jobs"
BATCH_PATH = "/v1/batch-predictions"


def job_not_found(job_id: str) -> NotFound:
    return NotFound.for_field("job_id", "no such job", summary=f"job {job_id[:60]!r} not found")


def get_owned_job(session: Session, owner: str, job_id: str) -> TrainingJob:
    """The job if `owner` owns it; another owner's job is reported exactly like a missing one."""
    job = session.scalar(
        select(TrainingJob).where(TrainingJob.id == job_id, TrainingJob.owner == owner)
    )
    if job is None:
        raise job_not_found(job_id)
    return job


class Registered(NamedTuple):
    """What a succeeded job registered: the version and the test-set metrics stored on it."""

    version: ModelVersionRef
    test_metrics: dict[str, Any] | None


def _versions(session: Session, ids: Sequence[int]) -> dict[int, Registered]:
    """The registered versions of a page of jobs, in one query (never one per job)."""
    if not ids:
        return {}
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.version, ModelVersion.metrics, Model.name)
        .join(Model, Model.id == ModelVersion.model_id)
        .where(ModelVersion.id.in_(ids))
    )
    return {
        row.id: Registered(
            ModelVersionRef(id=row.id, model_name=row.name, version=row.version),
            held_out_metrics(row.metrics),
        )
        for row in rows
    }


def held_out_metrics(stored: Any) -> dict[str, Any] | None:
    """The held-out part of a version's stored metrics (service/jobs/evaluate.py writes it)."""
    test = stored.get("test") if isinstance(stored, dict) else None
    return test if isinstance(test, dict) else None


def percent(epoch: int, total: int, status: str) -> float:
    if status == JobStatus.SUCCEEDED:
        return 100.0
    if total <= 0:
        return 0.0
    return round(min(100.0, 100.0 * epoch / total), 2)


def job_kind(job: TrainingJob) -> JobKind:
    """The kind every job view reports, from the `kind` stored in the job's hyperparameters."""
    if is_range_test(job):
        return "lr_range_test"
    if batch_predict.is_batch_predict(job):
        return "batch_predict"
    return "train"


def batch_report(job: TrainingJob) -> JobBatchReport:
    """A batch_predict job's batch as the job views show it (the full view is at `url`)."""
    opts = batch_predict.options(job)
    result = batch_predict.stored_result(job) if job.status == JobStatus.SUCCEEDED else None
    url = f"{BATCH_PATH}/{job.id}"
    return JobBatchReport(
        version=int(opts.get("version", 0)),
        split=str(opts.get("split", "all")),
        format=str(opts.get("format", "csv")),
        rows=result.get("rows") if result else None,
        url=url,
        result=f"{url}/result",
    )


def to_response(job: TrainingJob, registered: Registered | None) -> JobResponse:
    base = f"{JOBS_PATH}/{job.id}"
    kind = job_kind(job)
    lr_range = stored_result(job)
    return JobResponse(
        id=job.id,
        status=job.status,
        kind=kind,
        model_name=job.model_name,
        dataset=job.dataset_name,
        dataset_id=job.dataset_id,
        dataset_sha256=job.dataset_sha256,
        test_dataset=job.test_dataset_name,
        test_sha256=job.test_sha256,
        spec=job.spec,
        hyperparameters=job.hyperparameters or {},
        progress=Progress(
            epoch=job.epoch,
            total_epochs=job.total_epochs,
            percent=percent(job.epoch, job.total_epochs, job.status),
        ),
        # A range test's metrics are its lr_range, a batch's its `batch`.
        metrics=None if kind != "train" else job.metrics,
        eta_seconds=job.eta_seconds,
        failure_reason=job.failure_reason,
        warnings=warnings_of(job.warnings),
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
        model_version=registered.version if registered else None,
        test_metrics=registered.test_metrics if registered else None,
        lr_range=LRRangeReport.model_validate(lr_range) if lr_range else None,
        batch=batch_report(job) if kind == "batch_predict" else None,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        links=JobLinks(
            self=base,
            metrics=f"{base}/metrics",
            events=f"{base}/events",
            cancel=f"{base}/cancel",
            diagnostics=f"{base}/diagnostics",
        ),
    )


def warnings_of(stored: Any) -> list[TrainingWarning]:
    """The job row's warnings column as the response lists them (oldest first)."""
    if not isinstance(stored, list):
        return []
    return [TrainingWarning.model_validate(w) for w in stored if isinstance(w, dict)]


def responses(session: Session, jobs: Sequence[TrainingJob]) -> list[JobResponse]:
    versions = _versions(session, [j.model_version_id for j in jobs if j.model_version_id])
    return [
        to_response(j, versions.get(j.model_version_id) if j.model_version_id else None)
        for j in jobs
    ]


def job_view(database: Database, owner: str, job_id: str) -> JobResponse:
    with database.session() as session:
        return responses(session, [get_owned_job(session, owner, job_id)])[0]


def list_jobs(
    database: Database,
    owner: str,
    statuses: Sequence[str] | None,
    limit: int,
    offset: int,
    sweep_id: str | None = None,
) -> tuple[list[JobResponse], int]:
    """One page of the owner's jobs (only a sweep's trials, given `sweep_id`), newest first,
    and how many match in total."""
    where = [TrainingJob.owner == owner]
    if statuses:
        where.append(TrainingJob.status.in_(list(statuses)))
    if sweep_id is not None:
        trials = select(SweepTrial.job_id).where(SweepTrial.sweep_id == sweep_id)
        where.append(TrainingJob.id.in_(trials))
    with database.session() as session:
        total = session.scalar(select(func.count()).select_from(TrainingJob).where(*where)) or 0
        jobs = session.scalars(
            select(TrainingJob)
            .where(*where)
            .order_by(TrainingJob.created_at.desc(), TrainingJob.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        return responses(session, jobs), total


def epoch_metrics(point: MetricPoint) -> EpochMetrics:
    return EpochMetrics.model_validate({**(point.metrics or {}), "epoch": point.epoch})


def metric_page(
    database: Database, owner: str, job_id: str, after_epoch: int, limit: int
) -> tuple[list[EpochMetrics], int]:
    with database.session() as session:
        get_owned_job(session, owner, job_id)
        total = (
            session.scalar(
                select(func.count()).select_from(MetricPoint).where(MetricPoint.job_id == job_id)
            )
            or 0
        )
        points = session.scalars(
            select(MetricPoint)
            .where(MetricPoint.job_id == job_id, MetricPoint.epoch > after_epoch)
            .order_by(MetricPoint.epoch)
            .limit(limit)
        ).all()
        return [epoch_metrics(p) for p in points], total


def progress_since(
    database: Database, owner: str, job_id: str, after_epoch: int
) -> tuple[JobResponse, list[ProgressEvent]]:
    """The job now and one progress event per stored epoch after `after_epoch`.

    The job is read before the points in one transaction: once it is terminal, every one of
    its points was committed before, so a stream that ends here has sent them all.
    """
    with database.session() as session:
        job = responses(session, [get_owned_job(session, owner, job_id)])[0]
        points = session.scalars(
            select(MetricPoint)
            .where(MetricPoint.job_id == job_id, MetricPoint.epoch > after_epoch)
            .order_by(MetricPoint.epoch)
        ).all()
    events = [
        ProgressEvent(
            job_id=job.id,
            status=job.status,
            epoch=p.epoch,
            total_epochs=job.progress.total_epochs,
            percent=percent(p.epoch, job.progress.total_epochs, JobStatus.RUNNING),
            metrics=p.metrics or {},
            # The latest estimate: events are delivered now, whichever epoch they report.
            eta_seconds=job.eta_seconds,
        )
        for p in points
    ]
    return job, events
