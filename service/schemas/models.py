"""Model registry resources: models, their numbered versions, and movable aliases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from service.registry.traffic import MAX_SPLIT, MAX_WEIGHT
from service.schemas.types import WHOLE, VersionNumber


class TrafficShare(BaseModel):
    """One version's share of an alias's traffic: weight / the sum of the weights."""

    model_config = ConfigDict(extra="forbid")

    version: VersionNumber = Field(examples=[1])
    weight: Annotated[int, Field(strict=True, ge=1, le=MAX_WEIGHT), WHOLE] = Field(examples=[90])


class AliasTraffic(BaseModel):
    """How an alias splits traffic (and its shadow), for aliases that do more than name one
    version."""

    traffic: list[TrafficShare]
    shadow: int | None = Field(default=None, description="The shadow version, if any")


class VersionOut(BaseModel):
    """One immutable model version (weights are downloaded separately)."""

    model: str = Field(description="Model name", examples=["xor-mlp"])
    version: int = Field(ge=1, examples=[3])
    created_at: datetime
    job_id: str | None = Field(
        default=None,
        description="The training job that produced it; null for uploaded model files",
    )
    aliases: list[str] = Field(default_factory=list, examples=[["production"]])
    metrics: Any = Field(
        default=None,
        description="Final test metrics recorded by the training job (incl. confusion matrix)",
    )
    input_dim: int | None = Field(default=None, description="Features per instance (null: text)")
    loss: str | None = Field(default=None, examples=["categorical_crossentropy"])
    size_bytes: int = Field(description="Size of the model file")
    threshold: float | None = Field(
        default=None,
        description="Decision threshold of a binary classifier (e.g. spam scoring); "
        "null means 0.5. Set with PATCH /v1/models/{name}/versions/{version}",
    )
    dataset: str | None = Field(
        default=None, description="Lineage: the dataset its training job used (as submitted)"
    )
    dataset_sha256: str | None = Field(
        default=None,
        description="Lineage: SHA-256 of that uploaded file as sent (recorded at submit; null "
        "for built-ins and uploaded model files)",
    )
    test_dataset: str | None = Field(
        default=None, description="Lineage: the test_dataset named at submit, if any"
    )
    test_sha256: str | None = Field(
        default=None,
        description="Lineage: SHA-256 of the file its test rows came from when not the "
        "training file (the upload's test_file or the test_dataset's file)",
    )
    sweep_id: str | None = Field(
        default=None, description="The sweep that registered it as its best trial's model"
    )
    sweep_params: dict[str, Any] | None = Field(
        default=None, description="That best trial's parameters (spec path -> value)"
    )


class VersionDetail(VersionOut):
    spec: Any = Field(description="The complete model spec (every default filled in)")


class ModelSummary(BaseModel):
    name: str
    created_at: datetime
    n_versions: int
    latest_version: VersionOut | None = None
    aliases: dict[str, int] = Field(
        default_factory=dict, description="alias -> version", examples=[{"production": 2}]
    )
    traffic: dict[str, AliasTraffic] = Field(
        default_factory=dict,
        description="alias -> its split and shadow, for aliases that split traffic or have a "
        "shadow (aliases gives their largest share)",
    )


class ModelList(BaseModel):
    models: list[ModelSummary]


class ModelDetail(BaseModel):
    name: str
    created_at: datetime
    aliases: dict[str, int] = Field(default_factory=dict, description="alias -> version")
    traffic: dict[str, AliasTraffic] = Field(
        default_factory=dict,
        description="alias -> its split and shadow, for aliases that split traffic or have a "
        "shadow (aliases gives their largest share)",
    )
    versions: list[VersionOut]


class ShadowVersion(BaseModel):
    """A version every request through the alias is mirrored to after the answer: its
    outputs are compared with the answer's (Prometheus nns_shadow_*), never returned."""

    model_config = ConfigDict(extra="forbid")

    version: VersionNumber = Field(examples=[3])


class AliasRequest(BaseModel):
    """Point an alias at a version, or split its traffic between versions by weight
    (creating the alias or moving it); either may mirror requests to a shadow version."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # Exactly one of them (checked in registry/writes.py, 422 naming the field).
            "oneOf": [{"required": ["version"]}, {"required": ["traffic"]}],
            "examples": [
                {"version": 2},
                {
                    "traffic": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
                    "shadow": {"version": 3},
                },
            ],
        },
    )

    version: VersionNumber | None = Field(
        default=None, description="All traffic to this version (give this or traffic)"
    )
    traffic: list[TrafficShare] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SPLIT,
        description=f"Up to {MAX_SPLIT} distinct versions with positive integer weights; each "
        "request is answered by one of them, drawn by weight, and names it",
    )
    shadow: ShadowVersion | None = Field(
        default=None, description="A version to mirror every request to (never returned)"
    )


class VersionPatch(BaseModel):
    """Settings of a version that may change after training (the weights never do)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        strict=True,
        description="Probability at or above which a binary classifier answers the positive "
        "class (spam scoring's default threshold); null restores 0.5",
        examples=[0.8],
    )


class AliasOut(BaseModel):
    model: str
    alias: str
    version: int = Field(description="The version with the largest share (all of it if alone)")
    traffic: list[TrafficShare] = Field(
        description="Each version's weight (a plain alias: its version, weight 100)",
        examples=[[{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]],
    )
    shadow: int | None = Field(default=None, description="The shadow version, if any")
    updated_at: datetime
