"""POST /v1/models/{name}:explain: per-feature attributions next to the prediction."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.predict import ClassLabel, Prediction
from service.schemas.types import WHOLE, VersionNumber, numeric_instances

#: Instances per request: integrated gradients runs the model `steps + 1` times per instance.
MAX_EXPLAIN_INSTANCES = 32
MAX_STEPS = 1024
DEFAULT_STEPS = 64

Steps = Annotated[int, Field(strict=True, ge=1, le=MAX_STEPS), WHOLE]


class ExplainRequest(BaseModel):
    """The instances to explain (as :predict takes them), the version, and how."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"not": {"required": ["version", "alias"]}}
    )

    instances: list[Any] = Field(
        min_length=1,
        max_length=MAX_EXPLAIN_INSTANCES,
        examples=[[[1.0, 1.0], [-1.0, 1.0]]],
        description="One row of numbers per input (nested arrays such as images are flattened)",
        json_schema_extra=numeric_instances,
    )
    version: VersionNumber | None = None
    alias: str | None = Field(default=None, min_length=1, max_length=64, examples=["production"])
    method: Literal["integrated_gradients", "gradient_x_input"] = Field(
        default="integrated_gradients",
        description="integrated_gradients (Sundararajan et al. 2017; attributions add up to "
        "f(x) - f(baseline)) or gradient_x_input (x times the gradient; one pass)",
    )
    target: ClassLabel | None = Field(
        default=None,
        description="The class whose probability (or score) is explained; default: each "
        "instance's predicted class. Regression: the index of the output explained (default 0)",
    )
    baseline: list[Any] | None = Field(
        default=None,
        description="Integrated gradients' starting point: one instance (default all zeros, in "
        "the same raw units as the instances)",
    )
    steps: Steps = Field(
        default=DEFAULT_STEPS, description="Integrated gradients' trapezoid intervals"
    )


class Explanation(Prediction):
    """The prediction as :predict answers it, plus attributions of the explained output."""

    target: ClassLabel = Field(
        description="The class explained (its label), or the regression output's index"
    )
    output: float = Field(description="f(x): the probability, score or value explained")
    attributions: list[float] = Field(
        description="One number per input feature, in the units of `output`: how much the "
        "feature moved it"
    )
    baseline_output: float | None = Field(
        default=None, description="f(baseline) (integrated gradients)"
    )
    completeness_gap: float | None = Field(
        default=None,
        description="sum(attributions) - (output - baseline_output): integrated gradients' "
        "quadrature error; more steps shrink it",
    )


class ExplainResponse(BaseModel):
    explanations: list[Explanation]
    model: str
    version: int
    method: Literal["integrated_gradients", "gradient_x_input"]
    steps: int | None = Field(default=None, description="Integrated gradients' intervals")
    threshold: float | None = Field(
        default=None, description="The threshold a binary classifier's labels were decided by"
    )
