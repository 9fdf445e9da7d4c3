"""POST /v1/spam/score: raw text in, spam probability and a spam/ham label out.

The model featurizes the text itself (its first transform is text_features, saved in the
model file), so a message scores exactly as the same message did in training. The label is
"spam" when the probability reaches the threshold: the request's, else the version's own
(PATCH /v1/models/{name}/versions/{version} {"threshold": ...}), else 0.5.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends

from service import model_store, predictor
from service.api.models import get_cache
from service.api.predict import PREDICT_RESPONSES
from service.deps import SessionDep
from service.model_store import ModelCache, Served
from service.predictor import invalid
from service.rate_limit import PredictPrincipalDep
from service.schemas.tasks import SpamResult, SpamScoreRequest, SpamScoreResponse

router = APIRouter(tags=["tasks"])

CacheDep = Annotated[ModelCache, Depends(get_cache)]
DEFAULT_THRESHOLD = 0.5
SPAM, HAM = "spam", "ham"


@router.post("/v1/spam/score", response_model=SpamScoreResponse, responses=PREDICT_RESPONSES)
def score_spam(
    body: SpamScoreRequest,
    principal: PredictPrincipalDep,
    session: SessionDep,
    cache: CacheDep,
) -> SpamScoreResponse:
    """Score one `text` or a batch of `texts` with the latest version of `model` ("spam"),
    or `version` / `alias`."""
    if (body.text is None) == (body.texts is None):
        field = "texts" if body.texts is not None else "text"
        raise invalid(field, "give exactly one of text or texts")
    texts = [body.text] if body.text is not None else body.texts
    field = "text" if body.text is not None else "texts"
    ref = model_store.version_ref(body.version, body.alias)
    served = model_store.load_served(session, cache, principal.owner, body.model, ref)
    column = _spam_column(served)
    outputs = predictor.run(served.model, predictor.text_input(texts, field), field)
    assert outputs.probabilities is not None
    threshold = _threshold(body.threshold, served)
    spam = outputs.probabilities[:, column].astype(np.float64)
    return SpamScoreResponse(
        model=served.name,
        version=served.version,
        threshold=threshold,
        results=[
            SpamResult(spam_probability=p, label=SPAM if p >= threshold else HAM)
            for p in np.clip(spam, 0.0, 1.0).tolist()
        ],
    )


def _spam_column(served: Served) -> int:
    """The probability column of the spam class: the one labelled "spam", else the positive
    (second) class of a two-class text model; 422 naming `model` for anything else."""
    model = served.model
    kind = predictor.output_kind(model)
    classes = predictor.class_labels(model)
    if (
        not model.raw_input
        or kind not in (predictor.SIGMOID, predictor.SOFTMAX)
        or len(classes) != 2
    ):
        raise invalid(
            "model",
            f"{served.name!r} version {served.version} is not a two-class text classifier; "
            "train one with the spam-mlp preset",
        )
    return classes.index(SPAM) if SPAM in classes else 1


def _threshold(requested: float | None, served: Served) -> float:
    if requested is not None:
        return requested
    return served.threshold if served.threshold is not None else DEFAULT_THRESHOLD
