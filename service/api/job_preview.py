"""POST /v1/jobs/{job_id}/predict: predictions from a running job's latest checkpoint.

A model version exists only once a job has succeeded, so this is how a client watches a
model while it trains (the dashboard's playground redraws its decision boundary with it).
Checkpoints are written every `checkpoint_every` epochs and removed when the job finishes;
without one the route answers 409, and a finished job's model is served by :predict.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from nn_core.serialize import load_state
from service import predictor
from service.api.predict import PREDICT_RESPONSES, to_predictions
from service.deps import DatabaseDep, SettingsDep
from service.errors import Conflict, error_responses
from service.jobs import views
from service.models import Checkpoint, TrainingJob
from service.rate_limit import PredictPrincipalDep
from service.schemas.predict import Prediction

router = APIRouter(prefix=views.JOBS_PATH, tags=["jobs"])


class CheckpointPredictRequest(BaseModel):
    """Rows of numbers (or strings for text models), as for :predict."""

    model_config = ConfigDict(extra="forbid")

    instances: list[object] = Field(min_length=1, examples=[[[0.0, 1.0], [1.0, 1.0]]])


class CheckpointPredictResponse(BaseModel):
    job_id: str
    epoch: int = Field(description="The epoch the checkpoint was taken after")
    predictions: list[Prediction]


@router.post(
    "/{job_id}/predict",
    response_model=CheckpointPredictResponse,
    response_model_exclude_none=True,
    responses={**PREDICT_RESPONSES, **error_responses(409)},
)
def predict_with_checkpoint(
    job_id: str,
    body: CheckpointPredictRequest,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> CheckpointPredictResponse:
    """Predict with the model as of the job's latest checkpoint (409 when there is none:
    not started, before the first checkpoint, or finished — then use :predict)."""
    with database.session() as session:
        owner_job = select(TrainingJob.id).where(
            TrainingJob.id == job_id, TrainingJob.owner == principal.owner
        )
        if session.scalar(owner_job) is None:
            raise views.job_not_found(job_id)
        row = session.execute(
            select(Checkpoint.epoch, Checkpoint.state)
            .where(Checkpoint.job_id == job_id)
            .order_by(Checkpoint.epoch.desc())
            .limit(1)
        ).first()
    if row is None:
        raise Conflict(
            f"job {job_id!r} has no checkpoint right now; a finished job's model is served "
            "by POST /v1/models/{name}:predict",
            type="no_checkpoint",
        )
    model = load_state(row.state, max_params=settings.max_model_params).model
    x = predictor.model_input(model, body.instances, "instances")
    outputs = predictor.run(model, x, "instances")
    return CheckpointPredictResponse(
        job_id=job_id, epoch=row.epoch, predictions=to_predictions(outputs)
    )
