"""POST /v1/models/{name}:predict, TF-Serving style.

The literal ":predict" suffix works as a Starlette path: "{name}" matches up to the colon.
The handler is async: the version lookup and a small prediction run on the event loop, and
anything bigger (loading weights, large batches, text) in the thread pool, so NumPy work
never stalls the loop (see service/serving.py and predictor.compute).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

from nn_core.heads import Decoded
from service import predictor, shadow
from service.api.bodies import json_body
from service.api.errors import ERROR_RESPONSES, error_responses
from service.api.openapi import path_parameters, read_body
from service.auth import KEY_SECURITY
from service.rate_limit import charge_caller
from service.registry.names import version_ref
from service.schemas.predict import Prediction, PredictRequest, PredictResponse
from service.serving import VersionTarget, serve

router = APIRouter(tags=["predictions"])

PREDICT_RESPONSES = {**ERROR_RESPONSES, **error_responses(429, 503)}
_PREDICT_RESPONSES = {**PREDICT_RESPONSES, **error_responses(415)}


@router.post(
    "/v1/models/{name}:predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=_PREDICT_RESPONSES,
    openapi_extra={**path_parameters("name"), **read_body(PredictRequest), **KEY_SECURITY},
)
async def predict(request: Request) -> Response:
    """Predict a batch of instances with the latest version, or `version` / `alias`.

    Classifiers answer a label and per-class probabilities for each instance; regression
    models answer values. Text models take strings. A binary classifier's label follows
    `threshold`, else the version's own threshold, else 0.5. NaN, Infinity, wrong widths
    and wrong types answer 422 naming the instance. Through an alias that splits traffic,
    `version` names the version drawn to answer; an alias's shadow version sees the request
    after the answer is sent and is never returned.
    """
    # The hot path: the model's name, the key, the limit and the body are read here, not
    # as parameters and dependencies FastAPI solves (that costs more than the prediction),
    # app state is read directly, and the answer is serialized once, not validated again.
    name: str = request.path_params["name"]
    principal = await charge_caller(request)
    body = await json_body(request, PredictRequest)
    state = request.app.state
    target = VersionTarget(name, version_ref(body.version, body.alias))
    served = await serve(state.db, state.model_cache, principal.owner, target)
    model = served.model
    threshold = predictor.threshold_for(model, body.threshold, served.threshold, "threshold")

    def work() -> Response:
        x = predictor.model_input(model, body.instances, "instances")
        decoded = predictor.run(model, x, "instances", threshold)
        answer = PredictResponse(
            predictions=to_predictions(decoded),
            model=served.name,
            version=served.number,
            threshold=predictor.shown_threshold(model, threshold),
        )
        mirror = None
        if served.shadow is not None:  # runs after the answer is sent
            mirror = BackgroundTask(
                shadow.mirror,
                state.db,
                state.model_cache,
                state.metrics,
                served,
                x,
                decoded,
                body.threshold,
            )
        return Response(
            answer.model_dump_json(exclude_none=True),
            media_type="application/json",
            background=mirror,
        )

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
