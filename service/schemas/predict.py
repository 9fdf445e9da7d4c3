"""TF-Serving style predictions: POST /v1/models/{name}:predict with {"instances": [...]}."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.types import Threshold, VersionNumber, numeric_or_text_instances

ClassLabel = int | str


class PredictRequest(BaseModel):
    """Instances are rows of numbers (nested arrays such as 28x28 images are flattened), or
    strings for text models. Pick the version by number or alias; default is the latest."""

    # Documents the one rule fields cannot express alone: version and alias exclude each other.
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"not": {"required": ["version", "alias"]}}
    )

    instances: list[Any] = Field(
        min_length=1,
        examples=[[[0.0, 1.0], [1.0, 1.0]]],
        description="One entry per input: numbers (a row, or a 2-D array such as an image) "
        "for numeric models, strings for text models",
        json_schema_extra=numeric_or_text_instances,
    )
    version: VersionNumber | None = None
    alias: str | None = Field(default=None, min_length=1, max_length=64, examples=["production"])
    threshold: Threshold | None = Field(
        default=None,
        description="Binary classifiers: answer the positive class at or above this "
        "probability; default: the version's threshold, else 0.5",
    )


class Prediction(BaseModel):
    """Classifiers give label and probabilities (hinge losses a score instead); regression
    models give values. Absent fields do not apply to the model."""

    label: ClassLabel | list[ClassLabel] | None = Field(
        default=None, description="Predicted class (a list of classes for multi-label models)"
    )
    probabilities: dict[str, float] | None = Field(
        default=None, description="Class label -> probability", examples=[{"0": 0.1, "1": 0.9}]
    )
    score: float | None = Field(default=None, description="Margin score (hinge loss)")
    values: list[float] | None = Field(default=None, description="Regression outputs")


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model: str
    version: int
    threshold: float | None = Field(
        default=None, description="The threshold a binary classifier's labels were decided by"
    )
