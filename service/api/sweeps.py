"""/v1/sweeps: submit, list, inspect, follow (SSE) and cancel hyperparameter sweeps.

Handlers touch the database only; each trial trains as an ordinary job on the configured
runner. Submitting and cancelling take the sweep's first step at once (service/sweeps/
driver.py) and wake the runner so free slots pick the trials up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.sse import ServerSentEvent

from service.api.errors import ERROR_RESPONSES, error_responses, json_error_responses
from service.api.sse import EVENT_CONTENT, EventStream
from service.auth import PrincipalDep
from service.deps import DatabaseDep, SettingsDep, notify_runner
from service.models import TERMINAL_SWEEP_STATUSES
from service.schemas.sweeps import SweepList, SweepResponse, SweepSubmit
from service.sweeps import driver, views
from service.sweeps.submit import create_sweep

router = APIRouter(prefix=views.SWEEPS_PATH, tags=["sweeps"])

#: How often an SSE stream looks for changes (a few indexed reads).
EVENTS_POLL_SECONDS = 0.5
EVENTS_RETRY_MS = 2000


@router.post(
    "",
    status_code=202,
    response_model=SweepResponse,
    responses={
        **ERROR_RESPONSES,
        **error_responses(429),
        202: {"description": "Started; the Location header is the sweep's URL"},
    },
)
def submit_sweep(
    body: SweepSubmit,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> SweepResponse:
    """Start a sweep. The spec, search space, sampler and pruner are validated now (errors
    name the path); the first max_parallel trials are queued as jobs at once."""
    sweep = create_sweep(database, settings, principal.owner, body)
    driver.advance(database, settings, sweep.id)
    notify_runner(request)
    response.headers["Location"] = f"{views.SWEEPS_PATH}/{sweep.id}"
    return views.sweep_view(database, principal.owner, sweep.id)


@router.get("", response_model=SweepList, responses=ERROR_RESPONSES)
def list_sweeps(
    principal: PrincipalDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> SweepList:
    """Your sweeps, newest first."""
    items, total = views.list_sweeps(database, principal.owner, limit, offset)
    next_offset = offset + len(items) if offset + len(items) < total else None
    return SweepList(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset)


@router.get("/{sweep_id}", response_model=SweepResponse, responses=ERROR_RESPONSES)
def get_sweep(sweep_id: str, principal: PrincipalDep, database: DatabaseDep) -> SweepResponse:
    """Status, counts of trials by state, the best trial (and its model version once the
    sweep succeeded), importances, and every trial with its parameters and values."""
    return views.sweep_view(database, principal.owner, sweep_id)


@router.post("/{sweep_id}/cancel", response_model=SweepResponse, responses=ERROR_RESPONSES)
def cancel_sweep(
    sweep_id: str,
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> SweepResponse:
    """Idempotent. No new trials start; queued trial jobs are cancelled at once and running
    ones cooperatively; the sweep is `cancelled` once none is left running."""
    views.sweep_view(database, principal.owner, sweep_id)  # 404 for a sweep not yours
    driver.request_cancel(database, settings, sweep_id)
    notify_runner(request)
    return views.sweep_view(database, principal.owner, sweep_id)


def _owned_sweep(sweep_id: str, principal: PrincipalDep, database: DatabaseDep) -> SweepResponse:
    """The sweep as the stream starts; a 404 is raised here, before any event is sent."""
    return views.sweep_view(database, principal.owner, sweep_id)


@router.get(
    "/{sweep_id}/events",
    response_class=EventStream,
    responses={
        **json_error_responses(400, 401, 404, 409, 413, 422),
        200: {
            "content": EVENT_CONTENT,
            "description": "text/event-stream: a `snapshot` event (the sweep as GET "
            "/v1/sweeps/{sweep_id}), a `trial` event whenever a trial is created or changes "
            "state, job status or epoch (data: the trial, with sweep_id), `status` when the "
            "sweep's status changes, and a final `end` event (the sweep) after which the "
            "stream closes.",
        },
    },
)
async def sweep_events(
    snapshot: Annotated[SweepResponse, Depends(_owned_sweep)],
    principal: PrincipalDep,
    database: DatabaseDep,
) -> AsyncIterable[ServerSentEvent]:
    """Live progress of a sweep, ending when the sweep ends."""
    yield ServerSentEvent(event="snapshot", data=snapshot, retry=EVENTS_RETRY_MS)
    seen = {t.number: (t.state, t.job_status, t.epoch) for t in snapshot.trials}
    status = snapshot.status
    sweep = snapshot
    while sweep.status not in TERMINAL_SWEEP_STATUSES:
        await asyncio.sleep(EVENTS_POLL_SECONDS)
        sweep = await asyncio.to_thread(views.sweep_view, database, principal.owner, snapshot.id)
        for trial in sweep.trials:
            key = (trial.state, trial.job_status, trial.epoch)
            if seen.get(trial.number) != key:
                seen[trial.number] = key
                data = {"sweep_id": sweep.id, **trial.model_dump(mode="json")}
                yield ServerSentEvent(event="trial", data=data)
        if sweep.status != status:
            status = sweep.status
            yield ServerSentEvent(event="status", data={"sweep_id": sweep.id, "status": status})
    yield ServerSentEvent(event="end", data=sweep)
