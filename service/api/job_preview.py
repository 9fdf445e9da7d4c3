"""POST /v1/jobs/{job_id}/predict: predictions from a running job's latest checkpoint.

A model version exists only once a job has succeeded, so this is how a client watches a
model while it trains (the dashboard's playground redraws its decision boundary with it).
Checkpoints are written every `checkpoint_every` epochs and removed when the job finishes;
without one the route answers 409, and a finished job's model is served by :predict.

GET /v1/jobs/{job_id}/network: the same checkpoint's dense layers (weights, biases,
activations) and input features as JSON, read-only, so the playground can draw each neuron's
output over the input plane in the browser.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from nn_core.layers import Dense
from nn_core.preprocessing import Features
from service import predictor
from service.api.errors import error_responses
from service.api.predict import PREDICT_RESPONSES, to_predictions
from service.deps import DatabaseDep, ModelCacheDep
from service.errors import invalid
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


class NetworkLayer(BaseModel):
    units: int
    activation: str = Field(
        description="As the spec names it; the output layer's may be "
        "fused into the loss (softmax, sigmoid)"
    )
    alpha: float | None = Field(default=None, description="leaky_relu's and elu's alpha")
    weights: list[list[float]] = Field(
        description="in x out: weights[i][j] links input i to unit j"
    )
    biases: list[float]


class NetworkResponse(BaseModel):
    job_id: str
    epoch: int = Field(description="The epoch the checkpoint was taken after")
    input_dim: int
    features: list[str] | None = Field(
        default=None,
        description="The columns of the model's 'features' transform (the first layer's inputs); "
        "absent when the model reads its input columns as they are",
    )
    layers: list[NetworkLayer]


@router.get(
    "/{job_id}/network",
    response_model=NetworkResponse,
    response_model_exclude_none=True,
    responses=error_responses(404, 409, 422),
)
async def checkpoint_network(
    job_id: str,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> NetworkResponse:
    """The weights of the job's latest checkpoint, layer by layer (409 when there is no
    checkpoint; 422 for a model with layers other than dense or a transform other than
    'features')."""
    served = await serve(database, cache, principal.owner, CheckpointTarget(job_id))
    model = served.model
    epoch = served.epoch
    assert epoch is not None
    features: list[str] | None = None
    for transform in model.preprocess:
        if not isinstance(transform, Features) or features is not None:
            raise invalid("job_id", f"cannot show a network with a {transform.name!r} transform")
        features = list(transform.columns)
    layers = []
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, Dense):
            raise invalid("job_id", f"cannot show layers[{i}], a {layer.type!r} layer")
        activation = layer.output_activation
        bias = layer.params["b"] if layer.use_bias else np.zeros(layer.units)
        layers.append(
            NetworkLayer(
                units=layer.units,
                activation=activation.name,
                alpha=getattr(activation, "alpha", None),
                weights=np.asarray(layer.params["W"], dtype=float).tolist(),
                biases=np.asarray(bias, dtype=float).tolist(),
            )
        )
    return NetworkResponse(
        job_id=job_id,
        epoch=epoch,
        input_dim=model.input_dim or 0,
        features=features,
        layers=layers,
    )
