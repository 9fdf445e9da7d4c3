"""The one JSON error shape every 4xx/5xx answer has (documented in OpenAPI on every route)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    """One specific problem, e.g. a request field that failed validation."""

    field: str | None = Field(
        default=None,
        description="Dotted path of the offending input, e.g. body.spec.layers.0.units",
        examples=["body.spec.layers.0.units"],
    )
    message: str = Field(examples=["Input should be greater than 0"])


class ErrorBody(BaseModel):
    type: str = Field(
        description="Stable machine-readable kind of error", examples=["validation_error"]
    )
    message: str = Field(description="Human-readable summary", examples=["invalid request"])
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """`{"error": {"type": ..., "message": ..., "details": [{"field": ..., "message": ...}]}}`"""

    error: ErrorBody
