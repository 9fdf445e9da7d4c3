"""/v1/batch-predictions: predict a whole dataset with a model version, as a background job.

The batch runs as a job of kind batch_predict on the configured runner (service/jobs/
batch_predict.py); these handlers only touch the database and, for the result, stream the
file from disk (never loading it). Results expire (service/jobs/batch_retention.py): after
NNS_BATCH_RESULT_TTL_HOURS the download answers 410 Gone; DELETE removes a finished batch.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from service.api.errors import ERROR_RESPONSES, error_responses
from service.api.headers import attachment
from service.auth import PrincipalDep
from service.deps import DatabaseDep, SettingsDep, notify_runner
from service.errors import Conflict, ServiceError
from service.jobs import batch_predict, batch_retention
from service.jobs.batch_delete import delete_batch
from service.jobs.batch_submit import PATH, batch_view, create_batch, owned_batch, to_response
from service.models import JobStatus
from service.schemas.batch_predictions import BatchPredictionResponse, BatchPredictionSubmit

router = APIRouter(prefix=PATH, tags=["batch predictions"])

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "npz": "application/octet-stream"}


@router.post(
    "",
    status_code=202,
    response_model=BatchPredictionResponse,
    responses={
        **ERROR_RESPONSES,
        **error_responses(429),
        202: {"description": "Queued; the Location header is the batch's URL"},
    },
)
def submit_batch(
    body: BatchPredictionSubmit,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> BatchPredictionResponse:
    """Predict every row of `dataset` (or its train or test split) with a model version, in
    the background. Follow it at Location (or the job's SSE `events`: one `progress` event
    per chunk, epoch = rows written); download the file at its `result` link."""
    job = create_batch(database, settings, principal.owner, body)
    notify_runner(request)
    response.headers["Location"] = f"{PATH}/{job.id}"
    return to_response(job, settings)


@router.get("/{batch_id}", response_model=BatchPredictionResponse, responses=ERROR_RESPONSES)
def get_batch(
    batch_id: str, principal: PrincipalDep, database: DatabaseDep, settings: SettingsDep
) -> BatchPredictionResponse:
    """Status, progress (rows written of total), and once succeeded its rows, columns and
    when its result file expires."""
    return batch_view(database, settings, principal.owner, batch_id)


@router.delete("/{batch_id}", status_code=204, response_class=Response, responses=ERROR_RESPONSES)
def remove_batch(
    batch_id: str, principal: PrincipalDep, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """Delete a finished batch prediction: its result file and its job. A queued or running
    one answers 409: cancel it first (POST /v1/jobs/{id}/cancel), then delete it."""
    delete_batch(database, settings, principal.owner, batch_id)
    return Response(status_code=204)


@router.get(
    "/{batch_id}/result",
    response_class=FileResponse,
    responses={
        **ERROR_RESPONSES,
        **error_responses(410, 503),
        200: {
            "description": "The predictions: text/csv (row, label, p_<class>...; value columns "
            "for regression) or an NPZ (labels, probabilities/scores/values)",
            "content": {"text/csv": {}, "application/octet-stream": {}},
        },
    },
)
def batch_result(
    batch_id: str, principal: PrincipalDep, database: DatabaseDep, settings: SettingsDep
) -> FileResponse:
    """The result file of a succeeded batch, streamed from disk; 409 before it succeeded,
    410 once it expired (NNS_BATCH_RESULT_TTL_HOURS after it finished)."""
    with database.session() as session:
        job = owned_batch(session, principal.owner, batch_id)
        status, model, opts = job.status, job.model_name, batch_predict.options(job)
        expires = batch_retention.expires_at(settings, job)
        expired = batch_retention.is_expired(settings, job)
    if status != JobStatus.SUCCEEDED:
        raise Conflict(f"batch {batch_id!r} is {status}; its result exists once it succeeded")
    if expired and expires is not None:
        batch_retention.remove_files(settings, batch_id)  # the cleanup pass may not have run
        raise ServiceError(
            f"the result of batch {batch_id!r} expired at {expires.isoformat()} and was "
            "removed (results are kept NNS_BATCH_RESULT_TTL_HOURS after they finish); "
            "submit the batch again",
            status=410,
            type="result_expired",
        )
    fmt = opts.get("format", "csv")
    path = batch_predict.result_path(settings, batch_id, fmt)
    if not path.is_file():
        raise ServiceError(
            "the result file is not on this server: API and workers must share NNS_DATA_DIR",
            status=503,
            type="result_unavailable",
        )
    name = f"{model}-v{opts.get('version')}-{batch_id}.{fmt}"
    return FileResponse(
        path, media_type=MEDIA_TYPES[fmt], headers={"Content-Disposition": attachment(name)}
    )
