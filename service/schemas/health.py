"""Responses of the health, readiness and identity routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])


class ReadyResponse(BaseModel):
    status: str = Field(examples=["ready"])
    database: str = Field(description="Database backend in use", examples=["sqlite"])


class WhoAmIResponse(BaseModel):
    """The principal behind the API key of this request."""

    owner: str
    key_id: int
    key_name: str
    key_prefix: str = Field(description="Public part of the key, e.g. nns_0123abcd4567")
    is_admin: bool
