"""The sweep.finished event, recorded in the transaction that ends the sweep."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import ModelVersion, Sweep
from service.webhooks import events
from service.webhooks.outbox import record


def finished(session: Session, sweep: Sweep) -> None:
    """Record that `sweep` ended (succeeded, failed or cancelled), with its version if any."""
    version = (
        session.scalar(
            select(ModelVersion.version).where(ModelVersion.id == sweep.model_version_id)
        )
        if sweep.model_version_id is not None
        else None
    )
    data = {
        "sweep_id": sweep.id,
        "status": str(sweep.status),
        "model_name": sweep.model_name,
        "version": version,
        "best_trial_number": sweep.best_trial_number,
        "failure_reason": sweep.failure_reason,
    }
    record(session, sweep.owner, events.SWEEP_FINISHED, data)
