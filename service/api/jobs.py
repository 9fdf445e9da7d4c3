"""/v1/jobs: submit, list, inspect, follow (SSE) and cancel training jobs.

Handlers only touch the database; training happens in the runner's processes. Submitting
wakes the runner (notify) so a free slot picks the job up at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.sse import ServerSentEvent
from sqlalchemy import select

from service.api.errors import ERROR_RESPONSES, error_responses, json_error_responses
from service.api.sse import EVENT_CONTENT, EventStream
from service.auth import PrincipalDep
from service.deps import DatabaseDep, SettingsDep, notify_runner
from service.jobs import diagnostics, store, views
from service.jobs.submit import create_job
from service.models import TERMINAL_JOB_STATUSES, JobStatus, TrainingJob
from service.schemas.diagnostics import DiagnosticsPage
from service.schemas.jobs import JobList, JobResponse, JobSubmit, MetricsPage

router = APIRouter(prefix=views.JOBS_PATH, tags=["jobs"])

#: How often an SSE stream looks for new epochs (a cheap indexed read).
EVENTS_POLL_SECONDS = 0.25
#: Tells a browser's EventSource how soon to reconnect after a dropped connection.
EVENTS_RETRY_MS = 2000


@router.post(
    "",
    status_code=202,
    response_model=JobResponse,
    responses={
        **ERROR_RESPONSES,
        **error_responses(429),
        202: {"description": "Queued; the Location header is the job's URL"},
    },
)
def submit_job(
    body: JobSubmit,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> JobResponse:
    """Queue a training job. The spec is validated now (errors name the field); training
    runs in the background. Follow it at Location, /metrics or /events."""
    job = create_job(database, settings, principal.owner, body)
    notify_runner(request)
    response.headers["Location"] = f"{views.JOBS_PATH}/{job.id}"
    return views.to_response(job, None)


@router.get("", response_model=JobList, responses=ERROR_RESPONSES)
def list_jobs(
    principal: PrincipalDep,
    database: DatabaseDep,
    status: Annotated[
        list[JobStatus] | None, Query(description="Only jobs in these states (repeatable)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    sweep_id: Annotated[
        str | None, Query(max_length=40, description="Only the trial jobs of this sweep")
    ] = None,
) -> JobList:
    """Your jobs, newest first."""
    items, total = views.list_jobs(database, principal.owner, status, limit, offset, sweep_id)
    next_offset = offset + len(items) if offset + len(items) < total else None
    return JobList(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset)


@router.get("/{job_id}", response_model=JobResponse, responses=ERROR_RESPONSES)
def get_job(job_id: str, principal: PrincipalDep, database: DatabaseDep) -> JobResponse:
    """Status, progress (epoch/total, percent), latest epoch's metrics, ETA, failure reason,
    and once succeeded the registered model version with its test-set metrics."""
    return views.job_view(database, principal.owner, job_id)


#: The page cursor of the per-epoch routes (metrics, diagnostics).
AfterEpoch = Annotated[
    int,
    Query(ge=0, le=2**31 - 1, description="Only epochs after this one (the previous page's last)"),
]


@router.get("/{job_id}/metrics", response_model=MetricsPage, responses=ERROR_RESPONSES)
def job_metrics(
    job_id: str,
    principal: PrincipalDep,
    database: DatabaseDep,
    after_epoch: AfterEpoch = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MetricsPage:
    """Per-epoch metric history in epoch order, a page at a time."""
    items, total = views.metric_page(database, principal.owner, job_id, after_epoch, limit)
    next_after = items[-1].epoch if len(items) == limit else None
    return MetricsPage(job_id=job_id, items=items, total=total, next_after_epoch=next_after)


@router.get("/{job_id}/diagnostics", response_model=DiagnosticsPage, responses=ERROR_RESPONSES)
def job_diagnostics(
    job_id: str,
    principal: PrincipalDep,
    database: DatabaseDep,
    after_epoch: AfterEpoch = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> DiagnosticsPage:
    """Per-layer statistics per epoch, in epoch order, a page at a time: for each layer its
    weights, gradients and activations (mean, std, L2 norm, a 20-bin histogram over the
    tensor's own range), the update-to-weight ratio of the epoch's last step, and the share
    of saturated sigmoid/tanh outputs and dead ReLU units, on a fixed sample of training
    rows. Recorded every `training.diagnostics.every` epochs (default 1; `false` turns
    them off)."""
    items, total = diagnostics.diagnostics_page(
        database, principal.owner, job_id, after_epoch, limit
    )
    next_after = items[-1].epoch if len(items) == limit else None
    return DiagnosticsPage(job_id=job_id, items=items, total=total, next_after_epoch=next_after)


@router.post("/{job_id}/cancel", response_model=JobResponse, responses=ERROR_RESPONSES)
def cancel_job(
    job_id: str, request: Request, principal: PrincipalDep, database: DatabaseDep
) -> JobResponse:
    """Idempotent. A queued job is cancelled at once; a running one becomes `cancelling`
    until its process stops (cooperatively, else it is terminated after a grace period).
    A finished job is returned unchanged."""
    with database.write_session() as session:
        job = session.scalar(
            select(TrainingJob)
            .where(TrainingJob.id == job_id, TrainingJob.owner == principal.owner)
            .with_for_update()
        )
        if job is None:
            raise views.job_not_found(job_id)
        store.request_cancel(session, job)
    notify_runner(request)
    return views.job_view(database, principal.owner, job_id)


def _owned_job(job_id: str, principal: PrincipalDep, database: DatabaseDep) -> JobResponse:
    """The job as the stream starts; a 404 must be raised here, before any event is sent."""
    return views.job_view(database, principal.owner, job_id)


def _parse_last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


@router.get(
    "/{job_id}/events",
    response_class=EventStream,
    responses={
        **json_error_responses(400, 401, 404, 409, 413, 422),
        200: {
            "content": EVENT_CONTENT,
            "description": "text/event-stream: a `snapshot` event (the job), a `progress` event "
            "per epoch (SSE id = epoch), a `diagnostics` event per epoch with per-layer "
            "statistics (when recorded), `status` on state changes and a final `end` event "
            "(the job) after which the stream closes. Send Last-Event-ID to replay every "
            "epoch after that one. Each event's `data` is one JSON object: for `snapshot` "
            "and `end` a JobResponse (as GET /v1/jobs/{job_id}); for `progress` job_id, "
            "status, epoch, total_epochs, percent, metrics and eta_seconds; for `diagnostics` "
            "job_id, epoch, sample_loss and layers (as an item of GET "
            "/v1/jobs/{job_id}/diagnostics); for `status` job_id and status.",
        },
    },
)
async def job_events(
    snapshot: Annotated[JobResponse, Depends(_owned_job)],
    principal: PrincipalDep,
    database: DatabaseDep,
    last_event_id: Annotated[
        str | None, Header(description="Last epoch received; epochs after it are replayed")
    ] = None,
) -> AsyncIterable[ServerSentEvent]:
    """Live progress of a job, ending when the job ends. The `end` event is the finished job:
    on success with `model_version` (name and number) and the `test_metrics` stored on it,
    on failure with `failure_reason`."""
    cursor = _parse_last_event_id(last_event_id)
    yield ServerSentEvent(event="snapshot", data=snapshot, retry=EVENTS_RETRY_MS)
    if cursor is None:
        cursor = snapshot.progress.epoch
    status = snapshot.status
    diagnostics_cursor = cursor
    while True:
        job, events = await asyncio.to_thread(
            views.progress_since, database, principal.owner, snapshot.id, cursor
        )
        for event in events:
            yield ServerSentEvent(event="progress", id=str(event.epoch), data=event)
            cursor = event.epoch
        # Read after the job: once it is terminal, every diagnostics row is committed.
        records = await asyncio.to_thread(
            diagnostics.diagnostics_since, database, snapshot.id, diagnostics_cursor
        )
        for record in records:
            yield ServerSentEvent(event="diagnostics", data=record)
            diagnostics_cursor = record.epoch
        if job.status != status:
            status = job.status
            yield ServerSentEvent(event="status", data={"job_id": job.id, "status": status})
        if job.status in TERMINAL_JOB_STATUSES:
            yield ServerSentEvent(event="end", data=job)
            return
        await asyncio.sleep(EVENTS_POLL_SECONDS)
