"""POST /v1/models/{name}:predict, TF-Serving style.

The literal ":predict" suffix works as a Starlette path: "{name}" matches up to the colon.
The handler is async: the version lookup and a small prediction run on the event loop, and
anything bigger (loading weights, large batches, text) in the thread pool, so NumPy work
never stalls the loop (see predictor.compute and Database.read).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from service import model_store, predictor
from service.api.models import get_cache
from service.deps import DatabaseDep
from service.errors import ERROR_RESPONSES, error_responses
from service.model_store import ModelCache
from service.predictor import Outputs
from service.rate_limit import PredictPrincipalDep
from service.schemas.predict import Prediction, PredictRequest, PredictResponse

router = APIRouter(tags=["predictions"])

PREDICT_RESPONSES = {**ERROR_RESPONSES, **error_responses(429, 503)}


async def _cache(request: Request) -> ModelCache:
    """The model cache (async: an attribute read needs no trip through the thread pool)."""
    return get_cache(request)


CacheDep = Annotated[ModelCache, Depends(_cache)]


@router.post(
    "/v1/models/{name}:predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=PREDICT_RESPONSES,
)
async def predict(
    name: str,
    body: PredictRequest,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: CacheDep,
) -> PredictResponse:
    """Predict a batch of instances with the latest version, or `version` / `alias`.

    Classifiers answer a label and per-class probabilities for each instance; regression
    models answer values. Text models take strings. NaN, Infinity, wrong widths and wrong
    types answer 422 naming the instance.
    """
    ref = model_store.version_ref(body.version, body.alias)
    served = await model_store.serve(database, cache, principal.owner, name, ref)

    def work() -> PredictResponse:
        x = predictor.model_input(served.model, body.instances, "instances")
        outputs = predictor.run(served.model, x, "instances")
        return PredictResponse(
            predictions=to_predictions(outputs), model=served.name, version=served.version
        )

    return await predictor.compute(served.model, len(body.instances), work)


def to_predictions(outputs: Outputs) -> list[Prediction]:
    """One Prediction per row, with the fields that apply to the model's kind of output."""
    if outputs.kind == predictor.REGRESSION:
        assert outputs.values is not None
        return [Prediction(values=row) for row in outputs.values.tolist()]
    assert outputs.labels is not None
    if outputs.kind == predictor.HINGE:
        assert outputs.values is not None
        scores = outputs.values[:, 0].tolist()
        return [
            Prediction(label=lab, score=s) for lab, s in zip(outputs.labels, scores, strict=True)
        ]
    assert outputs.probabilities is not None
    keys = [str(c) for c in outputs.classes]
    return [
        Prediction(label=label, probabilities=dict(zip(keys, row, strict=True)))
        for label, row in zip(outputs.labels, outputs.probabilities.tolist(), strict=True)
    ]
