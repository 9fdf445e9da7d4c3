"""POST /v1/models/{name}:explain: the prediction and how much each input feature moved it.

Served like :predict (service/serving.py `serve`, the model cache, the predict rate limit);
the attributions come from nn_core.explain, always in a worker thread (integrated gradients
runs the model `steps + 1` times per instance).
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service import explaining, predictor
from service.api.predict import PREDICT_RESPONSES, to_predictions
from service.deps import DatabaseDep, ModelCacheDep
from service.errors import invalid
from service.rate_limit import PredictPrincipalDep
from service.registry.names import version_ref
from service.schemas.explain import ExplainRequest, ExplainResponse, Explanation
from service.serving import VersionTarget, serve

router = APIRouter(tags=["predictions"])


@router.post(
    "/v1/models/{name}:explain",
    response_model=ExplainResponse,
    response_model_exclude_none=True,
    responses=PREDICT_RESPONSES,
)
async def explain(
    name: str,
    body: ExplainRequest,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> ExplainResponse:
    """Explain the predictions of numeric instances with the latest version, or `version` /
    `alias`: per instance the prediction as :predict answers it and one attribution per
    input feature toward `target` (default: the predicted class; for regression output 0).

    `integrated_gradients` (default) also answers `completeness_gap`: how far the
    attributions' sum is from `output - baseline_output` (raise `steps` to shrink it).
    Attributions are in the raw input's units: the model's standardize/minmax/scale
    transforms are differentiated too. Text models answer 422 naming `instances` (use
    /v1/spam/score with `explain`).
    """
    target = VersionTarget(name, version_ref(body.version, body.alias))
    served = await serve(database, cache, principal.owner, target)
    model = served.model
    if model.raw_input:
        raise invalid(
            "instances",
            'text models are explained by word: POST /v1/spam/score with "explain": true',
        )
    column = None if body.target is None else explaining.target_column(model, body.target)
    threshold = predictor.threshold_for(model, None, served.threshold, "threshold")

    def work() -> ExplainResponse:
        x = predictor.numeric_input(model, body.instances, "instances")
        baseline = None
        if body.baseline is not None:
            baseline = predictor.numeric_input(model, [body.baseline], "baseline")[0]
        decoded = predictor.run(model, x, "instances", threshold)
        columns = (
            column if column is not None else explaining.predicted_columns(model, decoded.labels)
        )
        result = explaining.explain(
            model,
            x.astype(np.float64),
            method=body.method,
            columns=columns,
            baseline=baseline,
            steps=body.steps,
        )
        gaps = result.completeness_gap
        labels = model.classes if model.is_classifier else None
        explanations = []
        for i, prediction in enumerate(to_predictions(decoded)):
            col = int(result.columns[i])
            explanations.append(
                Explanation(
                    **prediction.model_dump(),
                    target=labels[col] if labels is not None else col,
                    output=float(result.outputs[i]),
                    attributions=result.attributions[i].tolist(),
                    baseline_output=None
                    if result.baseline_outputs is None
                    else float(result.baseline_outputs[i]),
                    completeness_gap=None if gaps is None else float(gaps[i]),
                )
            )
        ig = body.method == "integrated_gradients"
        return ExplainResponse(
            explanations=explanations,
            model=served.name,
            version=served.number,
            method=body.method,
            steps=body.steps if ig else None,
            threshold=predictor.shown_threshold(model, threshold),
        )

    return await run_in_threadpool(work)
