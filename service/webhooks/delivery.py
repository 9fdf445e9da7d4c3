"""The delivery loop: claim due outbox rows, POST them signed, retry with backoff, log.

Any number of processes may run it (the embedded supervisor, every RQ worker): a claim sets
`claimed_by` and a lease (`claimed_until`) in a short transaction, under `FOR UPDATE SKIP
LOCKED` on Postgres and SQLite's whole-database write lock, so each attempt is made by one
process. The POST happens outside any transaction; its result is written fenced by the
claim. A process that dies mid-POST leaves a lease that expires, and the row is retried.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import or_, select, update

from service.config import Settings
from service.db import Database
from service.models import (
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryState,
    utcnow,
)
from service.webhooks import signing, urls

log = logging.getLogger(__name__)

BATCH = 20


@dataclass(frozen=True)
class Claimed:
    id: str
    event: str
    payload: dict[str, object]
    attempts: int
    webhook_id: str
    url: str
    secret: str


@dataclass(frozen=True)
class Result:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delays(settings: Settings) -> list[float]:
    """Seconds to wait before each retry (NNS_WEBHOOK_RETRY_SECONDS)."""
    return [float(part) for part in settings.webhook_retry_seconds.split(",") if part.strip()]


def deliver_due(database: Database, settings: Settings, worker_id: str) -> int:
    """Make one attempt at every due delivery (up to a batch); returns how many."""
    claimed = _claim(database, settings, worker_id)
    allow = urls.AllowList.parse(settings.webhook_allow_hosts)
    for item in claimed:
        result = post(item, settings, allow)
        _settle(database, settings, worker_id, item, result)
    return len(claimed)


def _claim(database: Database, settings: Settings, worker_id: str) -> list[Claimed]:
    now = utcnow()
    with database.write_session() as session:
        rows = session.execute(
            select(WebhookDelivery, Webhook.url, Webhook.secret)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.state == WebhookDeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(BATCH)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        ).all()
        # Long enough for every claimed POST in turn (each bounded by post_budget), so no
        # other process takes a row this one is still about to send.
        budget = settings.webhook_lease_seconds + len(rows) * post_budget(settings)
        lease = now + timedelta(seconds=budget)
        claimed = []
        for delivery, url, secret in rows:
            delivery.claimed_by, delivery.claimed_until = worker_id, lease
            claimed.append(
                Claimed(
                    delivery.id,
                    delivery.event,
                    delivery.payload,
                    delivery.attempts,
                    delivery.webhook_id,
                    url,
                    secret,
                )
            )
        return claimed


def post_budget(settings: Settings) -> float:
    """The longest one POST can take: connect, send, first byte, the bounded drain."""
    return 4 * settings.webhook_timeout_seconds


def post(item: Claimed, settings: Settings, allow: urls.AllowList) -> Result:
    """One signed POST to the checked address; reads at most max_response_bytes back."""
    try:
        target = urls.check(item.url, allow)
    except urls.UnsafeURL as exc:
        return Result(None, f"refused: {exc}")
    body = json.dumps(item.payload, separators=(",", ":")).encode()
    headers = signing.headers(item.secret, item.id, int(utcnow().timestamp()), body)
    headers["host"] = target.url.netloc.decode("ascii")
    headers["user-agent"] = "nn-service-webhooks"
    extensions = {"sni_hostname": target.url.host} if target.url.scheme == "https" else {}
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    try:
        with (
            httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client,
            client.stream(
                "POST",
                target.url.copy_with(host=target.address),
                content=body,
                headers=headers,
                extensions=extensions,
            ) as response,
        ):
            _drain(response, settings.webhook_max_response_bytes, settings.webhook_timeout_seconds)
            return Result(response.status_code, None)
    except httpx.HTTPError as exc:
        return Result(None, f"{type(exc).__name__}: {exc}"[:500])


def _drain(response: httpx.Response, limit: int, seconds: float) -> None:
    """Read (and drop) at most `limit` bytes for at most `seconds`: a receiver can make us
    hold neither more memory nor more time (a slow drip included)."""
    read, deadline = 0, time.monotonic() + seconds
    for chunk in response.iter_raw():
        read += len(chunk)
        if read >= limit or time.monotonic() > deadline:
            return


def _settle(
    database: Database, settings: Settings, worker_id: str, item: Claimed, result: Result
) -> None:
    attempt = item.attempts + 1
    delays = retry_delays(settings)
    now = utcnow()
    values: dict[str, object] = {"attempts": attempt, "claimed_by": None, "claimed_until": None}
    if result.ok:
        values.update(state=WebhookDeliveryState.DELIVERED, finished_at=now)
    elif attempt > len(delays):
        values.update(state=WebhookDeliveryState.FAILED, finished_at=now)
    else:
        values["next_attempt_at"] = now + timedelta(seconds=delays[attempt - 1])
    with database.write_session() as session:
        done = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == item.id, WebhookDelivery.claimed_by == worker_id)
            .values(**values)
        )
        if not getattr(done, "rowcount", 0):  # the lease ran out and another process took it
            return
        session.add(
            WebhookAttempt(
                delivery_id=item.id,
                webhook_id=item.webhook_id,
                event=item.event,
                attempt=attempt,
                status_code=result.status_code,
                error=result.error,
                created_at=now,
            )
        )
    log.info(
        "webhook %s: %s attempt %d -> %s",
        item.webhook_id,
        item.event,
        attempt,
        result.status_code or result.error,
    )


class DeliveryPump:
    """Runs `deliver_due` in one background thread at a time, so a slow receiver never
    holds up the caller (the embedded supervisor's tick)."""

    def __init__(self, database: Database, settings: Settings, worker_id: str) -> None:
        self.database, self.settings, self.worker_id = database, settings, worker_id
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def kick(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="nns-webhooks", daemon=True)
            self._thread.start()

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            deliver_due(self.database, self.settings, self.worker_id)
        except Exception as exc:  # the next kick retries; the rows are still due
            log.warning("webhook delivery failed: %s", exc)
