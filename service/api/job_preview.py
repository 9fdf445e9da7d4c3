"""POST /v1/jobs/{job_id}/predict: predictions from a running job's latest checkpoint.

A model version exists only once a job has succeeded, so this is how a client watches a
model while it trains (the dashboard's playground redraws its decision boundary with it).
Checkpoints are written every `checkpoint_every` epochs and removed when the job finishes;
without one the route answers 409, and a finished job's model is served by :predict.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service import predictor
from service.api.errors import error_responses
from service.api.predict import PREDICT_RESPONSES, to_predictions
from service.deps import DatabaseDep, ModelCacheDep
from service.jobs import views
from service.rate_limit import PredictPrincipalDep
from service.schemas.predict import Prediction
from service.schemas.types import Threshold
from service.serving import CheckpointTarget, serve

router = APIRouter(prefix=views.JOBS_PATH, tags=["jobs"])


class CheckpointPredictRequest(BaseModel):
    """Rows of numbers (or strings for text models), as for :predict."""

    model_config = ConfigDict(extra="forbid")

    instances: list[object] = Field(min_length=1, examples=[[[0.0, 1.0], [1.0, 1.0]]])
    threshold: Threshold | None = Field(
        default=None,
        description="Binary classifiers: answer the positive class at or above this "
        "probability (default 0.5; a checkpoint is not a version, so has no threshold of its own)",
    )


class CheckpointPredictResponse(BaseModel):
    job_id: str
    epoch: int = Field(description="The epoch the checkpoint was taken after")
    predictions: list[Prediction]
    threshold: float | None = Field(
        default=None, description="The threshold a binary classifier's labels were decided by"
    )


@router.post(
    "/{job_id}/predict",
    response_model=CheckpointPredictResponse,
    response_model_exclude_none=True,
    responses={**PREDICT_RESPONSES, **error_responses(409)},
)
async def predict_with_checkpoint(
    job_id: str,
    body: CheckpointPredictRequest,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> CheckpointPredictResponse:
    """Predict with the model as of the job's latest checkpoint (409 when there is none:
    not started, before the first checkpoint, or finished — then use :predict)."""
    served = await serve(database, cache, principal.owner, CheckpointTarget(job_id))
    model = served.model
    threshold = predictor.threshold_for(model, body.threshold, None, "threshold")
    epoch = served.epoch
    assert epoch is not None

    def work() -> CheckpointPredictResponse:
        x = predictor.model_input(model, body.instances, "instances")
        decoded = predictor.run(model, x, "instances", threshold)
        return CheckpointPredictResponse(
            job_id=job_id,
            epoch=epoch,
            predictions=to_predictions(decoded),
            threshold=predictor.shown_threshold(model, threshold),
        )

    return await predictor.compute(model, len(body.instances), work)
