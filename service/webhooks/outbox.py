"""Writing events into the outbox, in the transaction of the state change they report.

`record()` adds one `WebhookDelivery` row per webhook of the owner subscribed to the event,
in the caller's session: the event exists if and only if the change committed, and a
restart between the commit and the POST loses nothing (the delivery loop finds the row).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import ModelAlias, Webhook, WebhookDelivery, utcnow


def record(session: Session, owner: str, event: str, data: dict[str, Any]) -> int:
    """Queue `event` for the owner's subscribed webhooks; returns how many were queued."""
    hooks = session.execute(select(Webhook.id, Webhook.events).where(Webhook.owner == owner))
    now = utcnow()
    payload = {"type": event, "timestamp": now.isoformat(), "data": data}
    count = 0
    for hook_id, events in hooks.all():
        if event in (events or []):
            session.add(
                WebhookDelivery(
                    webhook_id=hook_id, event=event, payload=payload, next_attempt_at=now
                )
            )
            count += 1
    return count


def alias_state(session: Session, model_id: int, alias: str) -> tuple[int, Any] | None:
    """An alias's (version_id, traffic) now, to tell afterwards whether a PUT moved it."""
    row = session.execute(
        select(ModelAlias.version_id, ModelAlias.traffic).where(
            ModelAlias.model_id == model_id, ModelAlias.alias == alias
        )
    ).first()
    return None if row is None else (row[0], row[1])
