"""The two task endpoints: MNIST digit classification and spam scoring.

They sit on top of the generic prediction path (same model registry, cache, versions and
aliases) and answer in the task's own terms: a digit with ten probabilities, a spam
probability with a label decided by a threshold.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.jobs import MODEL_NAME_PATTERN
from service.schemas.types import WHOLE, VersionNumber

#: At most this many images per request: each may decode to up to 40 megapixels.
MAX_PNGS = 32
#: At most this many texts per request (the body limit bounds their total size).
MAX_TEXTS = 1000
#: At most this many digits explained per request (each runs the model 65 times).
MAX_EXPLAINED = 32
#: How many features /v1/spam/score's explain lists: a strict integer that also takes 5.0.
TopK = Annotated[int, Field(strict=True, ge=1, le=100), WHOLE]


def _exactly_one_of(*fields: str) -> dict[str, Any]:
    """JSON Schema for "exactly one of these fields is given (not null)", plus _ModelRef's
    version/alias rule."""
    return {
        "not": {"required": ["version", "alias"]},
        "oneOf": [
            {"required": [field], "properties": {field: {"not": {"type": "null"}}}}
            for field in fields
        ],
    }


class _ModelRef(BaseModel):
    # As in PredictRequest: the schema says that version and alias exclude each other.
    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={"not": {"required": ["version", "alias"]}},
    )

    version: VersionNumber | None = Field(default=None, description="Default: the latest")
    alias: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        examples=["production"],
        description="e.g. production; give version or alias, not both",
    )


class MnistPredictRequest(_ModelRef):
    """Exactly one of `instances`, `png` or `pngs`. Instances are 784 numbers or 28x28
    arrays in MNIST's own terms (0-255, white digit on black); PNGs are any size and are
    converted the way MNIST was made (see service/digit_image.py)."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("instances", "png", "pngs"))

    model: str = Field(default="mnist", pattern=MODEL_NAME_PATTERN, description="Model name")
    instances: list[Any] | None = Field(
        default=None, min_length=1, description="784 numbers or a 28x28 array each"
    )
    png: str | None = Field(
        default=None, min_length=1, description="One base64 PNG (a data: URL prefix is allowed)"
    )
    pngs: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_PNGS, description="Several base64 PNGs"
    )
    explain: bool = Field(
        default=False,
        strict=True,
        description=f"Add a 28x28 saliency map per digit (at most {MAX_EXPLAINED} inputs)",
    )


class MnistFormFields(BaseModel):
    """Text fields that may accompany a multipart `file` upload."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(default="mnist", pattern=MODEL_NAME_PATTERN)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    alias: str | None = Field(default=None, min_length=1, max_length=64)
    explain: bool = Field(default=False, description="Add a 28x28 saliency map")


class DigitPrediction(BaseModel):
    digit: int = Field(ge=0, le=9, examples=[7])
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="probabilities[d] is the probability of digit d"
    )
    saliency: list[list[float]] | None = Field(
        default=None,
        description="With explain: 28x28 integrated gradients of the digit's probability from "
        "a black image, per pixel (0-255 units in, probability out); they add up to about "
        "the probability minus a black image's",
    )


class MnistPredictResponse(BaseModel):
    model: str = Field(examples=["mnist"])
    version: int = Field(examples=[3])
    predictions: list[DigitPrediction]


class SpamScoreRequest(_ModelRef):
    """Exactly one of `text` or `texts`: raw messages, featurized by the model itself."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("text", "texts"))

    model: str = Field(default="spam", pattern=MODEL_NAME_PATTERN, description="Model name")
    text: str | None = Field(default=None, examples=["WINNER!! Claim your prize now"])
    texts: list[str] | None = Field(default=None, min_length=1, max_length=MAX_TEXTS)
    threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        strict=True,
        description="Label spam at or above this probability; default: the version's "
        "threshold (PATCH /v1/models/{name}/versions/{version}), else 0.5",
    )
    explain: bool = Field(
        default=False,
        strict=True,
        description="Add the tokens and n-grams that pushed each score most (top_features)",
    )
    top_k: TopK = Field(default=10, description="How many features explain lists")


class SpamFeature(BaseModel):
    feature: str = Field(
        description="A token, a bigram, a character n-gram (# prefix) or a hand feature "
        "([name]); keys of the text sharing one hashed column are joined by ' | '",
        examples=["prize"],
    )
    weight: float = Field(
        description="Gradient x input toward spam: positive pushed the score up, negative down"
    )


class SpamResult(BaseModel):
    spam_probability: float = Field(ge=0.0, le=1.0, examples=[0.97])
    label: str = Field(description="spam or ham", examples=["spam"])
    top_features: list[SpamFeature] | None = Field(
        default=None, description="With explain: the strongest features, strongest first"
    )


class SpamScoreResponse(BaseModel):
    model: str = Field(examples=["spam"])
    version: int = Field(examples=[1])
    threshold: float = Field(description="The threshold the labels were decided by")
    results: list[SpamResult]
