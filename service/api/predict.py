"""POST /v1/models/{name}:predict, TF-Serving style.

The literal ":predict" suffix works as a Starlette path: "{name}" matches up to the colon.
The handler is async: the version lookup and a small prediction run on the event loop, and
anything bigger (loading weights, large batches, text) in the thread pool, so NumPy work
never stalls the loop (see service/serving.py and predictor.compute).
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, Response

from nn_core.heads import Decoded
from service import predictor, shadow
from service.api.errors import ERROR_RESPONSES, error_responses
from service.rate_limit import PredictPrincipalDep
from service.registry.names import version_ref
from service.schemas.predict import Prediction, PredictRequest, PredictResponse
from service.serving import VersionTarget, serve

router = APIRouter(tags=["predictions"])

PREDICT_RESPONSES = {**ERROR_RESPONSES, **error_responses(429, 503)}


@router.post(
    "/v1/models/{name}:predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=PREDICT_RESPONSES,
)
async def predict(
    name: str,
    body: PredictRequest,
    request: Request,
    background: BackgroundTasks,
    principal: PredictPrincipalDep,
) -> Response:
    """Predict a batch of instances with the latest version, or `version` / `alias`.

    Classifiers answer a label and per-class probabilities for each instance; regression
    models answer values. Text models take strings. A binary classifier's label follows
    `threshold`, else the version's own threshold, else 0.5. NaN, Infinity, wrong widths
    and wrong types answer 422 naming the instance. Through an alias that splits traffic,
    `version` names the version drawn to answer; an alias's shadow version sees the request
    after the answer is sent and is never returned.
    """
    # The hot path: app state read here rather than as dependencies (each one FastAPI solves
    # costs more than the read), and the answer serialized once, not validated again.
    database, cache = request.app.state.db, request.app.state.model_cache
    target = VersionTarget(name, version_ref(body.version, body.alias))
    served = await serve(database, cache, principal.owner, target)
    model = served.model
    threshold = predictor.threshold_for(model, body.threshold, served.threshold, "threshold")

    def work() -> Response:
        x = predictor.model_input(model, body.instances, "instances")
        decoded = predictor.run(model, x, "instances", threshold)
        if served.shadow is not None:
            background.add_task(
                shadow.mirror,
                database,
                cache,
                request.app.state.metrics,
                served,
                x,
                decoded,
                body.threshold,
            )
        answer = PredictResponse(
            predictions=to_predictions(decoded),
            model=served.name,
            version=served.number,
            threshold=predictor.shown_threshold(model, threshold),
        )
        return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")

    return await predictor.compute(model, len(body.instances), work)


def to_predictions(decoded: Decoded) -> list[Prediction]:
    """One Prediction per row, with the fields that apply to the model's kind of output."""
    if decoded.labels is None:
        assert decoded.values is not None
        return [Prediction(values=row) for row in decoded.values.tolist()]
    if decoded.probabilities is None:
        assert decoded.values is not None
        scores = decoded.values[:, 0].tolist()
        return [
            Prediction(label=lab, score=s) for lab, s in zip(decoded.labels, scores, strict=True)
        ]
    keys = [str(c) for c in decoded.classes]
    return [
        Prediction(label=label, probabilities=dict(zip(keys, row, strict=True)))
        for label, row in zip(decoded.labels, decoded.probabilities.tolist(), strict=True)
    ]
