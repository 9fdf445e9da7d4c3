"""POST /v1/spam/score: raw text in, spam probability and a spam/ham label out.

The model featurizes the text itself (its first transform is text_features, saved in the
model file), so a message scores exactly as the same message did in training. The label is
"spam" when the probability reaches the threshold: the request's, else the version's own
(PATCH /v1/models/{name}/versions/{version} {"threshold": ...}), else 0.5.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter

from nn_core.heads import DEFAULT_THRESHOLD
from service import explaining, predictor
from service.api.predict import PREDICT_RESPONSES
from service.deps import DatabaseDep, ModelCacheDep
from service.errors import invalid
from service.rate_limit import PredictPrincipalDep
from service.registry.names import version_ref
from service.schemas.tasks import SpamFeature, SpamResult, SpamScoreRequest, SpamScoreResponse
from service.serving import Served, VersionTarget, serve

router = APIRouter(tags=["tasks"])

SPAM, HAM = "spam", "ham"


@router.post(
    "/v1/spam/score",
    response_model=SpamScoreResponse,
    response_model_exclude_none=True,
    responses=PREDICT_RESPONSES,
)
async def score_spam(
    body: SpamScoreRequest,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> SpamScoreResponse:
    """Score one `text` or a batch of `texts` with the latest version of `model` ("spam"),
    or `version` / `alias`; with `explain`, also the `top_k` tokens and n-grams that moved
    each score most, with their sign (gradient x input on the model's own features)."""
    if (body.text is None) == (body.texts is None):
        field = "texts" if body.texts is not None else "text"
        raise invalid(field, "give exactly one of text or texts")
    texts = [body.text] if body.text is not None else body.texts
    field = "text" if body.text is not None else "texts"
    target = VersionTarget(body.model, version_ref(body.version, body.alias))
    served = await serve(database, cache, principal.owner, target)
    column = _spam_column(served)
    chosen = predictor.threshold_for(served.model, body.threshold, served.threshold, "threshold")
    threshold = DEFAULT_THRESHOLD if chosen is None else chosen

    def work() -> SpamScoreResponse:
        decoded = predictor.run(served.model, predictor.text_input(texts, field), field)
        assert decoded.probabilities is not None
        spam = decoded.probabilities[:, column].astype(np.float64)
        tops: list[list[SpamFeature] | None] = [None] * len(spam)
        if body.explain:
            assert texts is not None
            found = explaining.top_text_features(served.model, texts, column, body.top_k)
            tops = [[SpamFeature(feature=f.feature, weight=f.weight) for f in t] for t in found]
        return SpamScoreResponse(
            model=served.name,
            version=served.number,
            threshold=threshold,
            results=[
                SpamResult(
                    spam_probability=p, label=SPAM if p >= threshold else HAM, top_features=top
                )
                for p, top in zip(np.clip(spam, 0.0, 1.0).tolist(), tops, strict=True)
            ],
        )

    return await predictor.compute(served.model, len(texts or ()), work)


def _spam_column(served: Served) -> int:
    """The probability column of the spam class: the one labelled "spam", else the positive
    (second) class of a two-class text model; 422 naming `model` for anything else."""
    model = served.model
    classes = model.classes
    if not model.raw_input or not model.head.binary or len(classes) != 2:
        raise invalid(
            "model",
            f"{served.name!r} version {served.version} is not a two-class text classifier; "
            "train one with the spam-mlp preset",
        )
    return classes.index(SPAM) if SPAM in classes else 1
