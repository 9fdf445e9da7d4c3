"""Request and response models of the webhooks API (service/api/webhooks.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.webhooks.events import EventName


class WebhookCreate(BaseModel):
    """A URL to POST the given events to, signed as Standard Webhooks defines."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2048,
        # Documents the scheme and characters the server checks (service/webhooks/urls.py,
        # a 422 naming `url`); not validated here, so that check keeps answering.
        json_schema_extra={"pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f]+$"},
        description="http(s) URL on a public address (see NNS_WEBHOOK_ALLOW_HOSTS)",
        examples=["https://example.com/hooks/nn-service"],
    )
    events: list[EventName] = Field(min_length=1, max_length=10, examples=[["job.succeeded"]])
    description: str = Field(default="", max_length=200)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    """The only answer that carries the signing secret: keep it."""

    secret: str = Field(description="whsec_ + base64 key for verifying webhook-signature")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryAttemptOut(BaseModel):
    """One POST tried: its status code, or the error when there was no answer."""

    delivery_id: str = Field(description="the webhook-id header: the same on every retry")
    event: str
    attempt: int
    status_code: int | None
    error: str | None
    state: str = Field(description="the delivery now: pending (retrying), delivered, failed")
    created_at: datetime


class DeliveryLog(BaseModel):
    deliveries: list[DeliveryAttemptOut]
