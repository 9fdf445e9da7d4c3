"""/v1/webhooks: register URLs for events, list, inspect, delete, read the delivery log.

Owner-scoped like every resource: another owner's webhook answers 404. The URL goes through
the SSRF guard (service/webhooks/urls.py) now, and again before every delivery.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.api.errors import ERROR_RESPONSES
from service.auth import PrincipalDep
from service.deps import DatabaseDep, SessionDep, SettingsDep
from service.errors import NotFound, invalid
from service.models import Webhook, WebhookAttempt, WebhookDelivery
from service.schemas.webhooks import (
    DeliveryAttemptOut,
    DeliveryLog,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from service.webhooks import signing, urls

PATH = "/v1/webhooks"
router = APIRouter(prefix=PATH, tags=["webhooks"])


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={**ERROR_RESPONSES, 201: {"description": "Created; the secret is shown once"}},
)
def create_webhook(
    body: WebhookCreate,
    response: Response,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> WebhookCreated:
    """Register a URL for events. The answer carries the signing secret, once."""
    try:
        urls.check(body.url, urls.AllowList.parse(settings.webhook_allow_hosts))
    except urls.Unresolvable:
        pass  # it may resolve later; every delivery checks it again
    except urls.UnsafeURL as exc:
        raise invalid("url", str(exc)) from None
    with database.write_session() as session:
        hook = Webhook(
            owner=principal.owner,
            url=body.url,
            events=sorted(set(body.events)),
            description=body.description,
            secret=signing.new_secret(),
        )
        session.add(hook)
        session.flush()
        created = WebhookCreated(**_out(hook).model_dump(), secret=hook.secret)
    response.headers["Location"] = f"{PATH}/{created.id}"
    return created


@router.get("", response_model=WebhookList, responses=ERROR_RESPONSES)
def list_webhooks(principal: PrincipalDep, session: SessionDep) -> WebhookList:
    """Your webhooks (without their secrets)."""
    rows = session.scalars(
        select(Webhook).where(Webhook.owner == principal.owner).order_by(Webhook.created_at)
    )
    return WebhookList(webhooks=[_out(row) for row in rows])


@router.get("/{webhook_id}", response_model=WebhookOut, responses=ERROR_RESPONSES)
def get_webhook(webhook_id: str, principal: PrincipalDep, session: SessionDep) -> WebhookOut:
    """One webhook (without its secret)."""
    return _out(_get(session, principal.owner, webhook_id))


@router.delete("/{webhook_id}", status_code=204, response_class=Response, responses=ERROR_RESPONSES)
def delete_webhook(webhook_id: str, principal: PrincipalDep, database: DatabaseDep) -> Response:
    """Stop delivering to this URL; pending deliveries and the log go with it."""
    with database.write_session() as session:
        hook = _get(session, principal.owner, webhook_id)
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.webhook_id == hook.id))
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
        session.delete(hook)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryLog, responses=ERROR_RESPONSES)
def list_deliveries(
    webhook_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    limit: int = Query(default=100, ge=1, le=1000),
) -> DeliveryLog:
    """The delivery log, newest first: each attempt's status code or error, and when."""
    hook = _get(session, principal.owner, webhook_id)
    rows = session.execute(
        select(WebhookAttempt, WebhookDelivery.state)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .where(WebhookAttempt.webhook_id == hook.id)
        .order_by(WebhookAttempt.created_at.desc(), WebhookAttempt.id.desc())
        .limit(limit)
    ).all()
    return DeliveryLog(
        deliveries=[
            DeliveryAttemptOut(
                delivery_id=a.delivery_id,
                event=a.event,
                attempt=a.attempt,
                status_code=a.status_code,
                error=a.error,
                state=state,
                created_at=a.created_at,
            )
            for a, state in rows
        ]
    )


def _get(session: Session, owner: str, webhook_id: str) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.owner != owner:
        raise NotFound(f"webhook {webhook_id!r} not found")
    return hook


def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        url=hook.url,
        events=list(hook.events),
        description=hook.description,
        created_at=hook.created_at,
    )
