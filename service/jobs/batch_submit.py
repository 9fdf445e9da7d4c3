"""Submitting and reading batch predictions: a batch is a job row of kind "batch_predict".

Everything the batch could fail on before it runs is checked at submit, naming the field:
the model and its version or alias (404), the dataset (404), an empty split or a dataset
whose width the model cannot take (422). The version is pinned at submit (its id is stored),
so moving an alias later does not change a queued batch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import Settings
from service.datasets_store import TASK_TEXT, find_upload, is_catalog_name, not_found, split_sizes
from service.db import Database
from service.errors import NotFound, invalid
from service.jobs import batch_predict, batch_retention, views
from service.jobs.submit import check_job_limit
from service.models import Dataset, JobStatus, ModelVersion, TrainingJob
from service.registry import reads
from service.schemas.batch_predictions import (
    BatchLinks,
    BatchPredictionResponse,
    BatchPredictionSubmit,
    BatchProgress,
)

PATH = views.BATCH_PATH


def batch_not_found(batch_id: str) -> NotFound:
    return NotFound.for_field(
        "batch_id", "no such batch prediction", summary=f"batch {batch_id[:60]!r} not found"
    )


def _split_rows(upload: Dataset, split: str) -> int:
    n_train, n_test = split_sizes(upload)
    rows = {"all": upload.n_rows, "train": n_train, "test": n_test}[split]
    if rows == 0:
        raise invalid("split", f"dataset {upload.name!r} has no {split} rows")
    return rows


def _check_width(upload: Dataset, version: ModelVersion) -> None:
    spec = version.spec if isinstance(version.spec, dict) else {}
    width = spec.get("input_dim")
    if upload.task != TASK_TEXT and isinstance(width, int) and width != upload.n_features:
        raise invalid(
            "dataset",
            f"{upload.name!r} has {upload.n_features} features per row; the model takes {width}",
        )


def create_batch(
    database: Database, settings: Settings, owner: str, body: BatchPredictionSubmit
) -> TrainingJob:
    """Validate and insert a queued batch_predict job."""
    with database.session() as session:
        model = reads.get_model(session, owner, body.model)
        ref: int | str | None = body.alias if body.alias is not None else body.version
        version = reads.resolve_version(session, model, ref)
        upload = find_upload(session, owner, body.dataset)
        if upload is None and not is_catalog_name(body.dataset):
            raise not_found(body.dataset)
        total = 0  # a built-in's row count is known once the job loads it
        if upload is not None:
            total = _split_rows(upload, body.split)
            _check_width(upload, version)
        session.expunge_all()
    options: dict[str, Any] = {
        "model": body.model,
        "version": version.version,
        "version_id": version.id,
        "alias": body.alias,
        "split": body.split,
        "format": body.format,
    }
    with database.write_session() as session:
        check_job_limit(session, database, settings, owner)
        job = TrainingJob(
            owner=owner,
            status=JobStatus.QUEUED,
            spec=version.spec,
            dataset_id=upload.id if upload else None,
            dataset_name=body.dataset,
            dataset_sha256=upload.sha256 if upload else None,
            model_name=body.model,
            hyperparameters={"kind": batch_predict.KIND, batch_predict.OPTIONS_KEY: options},
            total_epochs=total,
        )
        session.add(job)
        session.flush()
        return job


def owned_batch(session: Session, owner: str, batch_id: str) -> TrainingJob:
    """The owner's batch job; another owner's, or any other kind of job, is a 404."""
    job = session.scalar(
        select(TrainingJob).where(TrainingJob.id == batch_id, TrainingJob.owner == owner)
    )
    if job is None or not batch_predict.is_batch_predict(job):
        raise batch_not_found(batch_id)
    return job


def to_response(job: TrainingJob, settings: Settings) -> BatchPredictionResponse:
    opts = batch_predict.options(job)
    result = batch_predict.stored_result(job) if job.status == JobStatus.SUCCEEDED else None
    url = f"{PATH}/{job.id}"
    return BatchPredictionResponse(
        id=job.id,
        status=JobStatus(job.status),
        model=job.model_name,
        version=int(opts.get("version", 0)),
        dataset=job.dataset_name,
        split=opts.get("split", "all"),
        format=opts.get("format", "csv"),
        progress=BatchProgress(
            rows_done=job.epoch or 0,
            total_rows=job.total_epochs or 0,
            percent=views.percent(job.epoch or 0, job.total_epochs or 0, job.status),
        ),
        rows=result.get("rows") if result else None,
        columns=result.get("columns") if result else None,
        failure_reason=job.failure_reason,
        created_at=job.created_at,
        finished_at=job.finished_at,
        expires_at=batch_retention.expires_at(settings, job),
        expired=batch_retention.is_expired(settings, job),
        links=BatchLinks.model_validate(
            {
                "self": url,
                "result": f"{url}/result",
                "job": f"{views.JOBS_PATH}/{job.id}",
                "events": f"{views.JOBS_PATH}/{job.id}/events",
            }
        ),
    )


def batch_view(
    database: Database, settings: Settings, owner: str, batch_id: str
) -> BatchPredictionResponse:
    with database.session() as session:
        return to_response(owned_batch(session, owner, batch_id), settings)
