"""Named model specs a training job may give as `"spec": "<name>"`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PresetOut(BaseModel):
    name: str = Field(examples=["spam-mlp"])
    description: str
    spec: dict[str, Any] = Field(description="The spec the name stands for (before overrides)")


class PresetList(BaseModel):
    presets: list[PresetOut]
