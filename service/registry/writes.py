"""Changing the registry: new versions (from a training job or an uploaded file), aliases,
thresholds and deletes. Each runs in the caller's write transaction.

Numbering a new version locks the Model row first (FOR UPDATE on Postgres; SQLite's BEGIN
IMMEDIATE already serializes writers) before reading the highest version, and the unique
(model_id, version) constraint catches anything else; callers retry on IntegrityError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nn_core.heads import Head
from service.errors import Conflict, Unprocessable
from service.models import Model, ModelAlias, ModelVersion, utcnow
from service.registry import traffic
from service.registry.names import check_alias, shown
from service.registry.reads import get_alias, resolve_version
from service.schemas.errors import ErrorDetail


def get_or_create_model(session: Session, owner: str, name: str) -> Model:
    """The owner's model `name`, created if missing, locked for numbering a new version."""
    query = select(Model).where(Model.owner == owner, Model.name == name).with_for_update()
    record = session.scalar(query)
    if record is not None:
        return record
    try:
        with session.begin_nested():  # a concurrent creator wins the unique (owner, name)
            session.add(Model(owner=owner, name=name))
    except IntegrityError:
        pass
    record = session.scalar(query)
    assert record is not None
    return record


def add_version(
    session: Session,
    *,
    owner: str,
    name: str,
    spec: dict[str, Any],
    metrics: dict[str, Any] | None,
    weights: bytes,
    job_id: str | None = None,
) -> ModelVersion:
    """Register `weights` as the next version of the owner's model `name` (created if new)."""
    record = get_or_create_model(session, owner, name)
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == record.id)
    )
    version = ModelVersion(
        model_id=record.id,
        version=(latest or 0) + 1,
        spec=spec,
        metrics=metrics,
        weights=weights,
        job_id=job_id,
    )
    session.add(version)
    session.flush()
    return version


def set_alias(
    session: Session,
    model: Model,
    alias: str,
    number: int | None = None,
    *,
    split: Sequence[tuple[int, int]] | None = None,
    shadow: int | None = None,
) -> ModelAlias:
    """Point `alias` at version `number`, or split it by (version, weight) (created or
    moved), optionally mirroring every request to the `shadow` version."""
    check_alias(alias)
    if (number is None) == (split is None):
        raise Unprocessable.for_field(
            "body.version" if number is None else "body.traffic",
            "give either version or traffic",
            summary="give either version (all traffic to it) or traffic (a split), not both",
        )
    if split is None:
        assert number is not None
        version = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.version == number
            )
        )
        if version is None:
            raise Unprocessable.for_field(
                "body.version",
                "no such version",
                summary=f"model {shown(model.name)!r} has no version {number}",
            )
        version_id, stored = version.id, None
        if shadow is not None:
            version_id, stored = traffic.build(session, model, [(number, 100)], shadow)
    else:
        version_id, stored = traffic.build(session, model, split, shadow)
    record = session.scalar(
        select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
    )
    if record is None:
        record = ModelAlias(model_id=model.id, alias=alias, version_id=version_id, traffic=stored)
        session.add(record)
    else:
        record.version_id = version_id
        record.traffic = stored
        record.updated_at = utcnow()
    session.flush()
    return record


def delete_alias(session: Session, model: Model, alias: str) -> None:
    record = get_alias(session, model, alias)
    session.execute(delete(ModelAlias).where(ModelAlias.id == record.id))


def delete_model(session: Session, model: Model) -> list[int]:
    """Delete a model with its versions and aliases; returns the version ids to evict."""
    ids = list(session.scalars(select(ModelVersion.id).where(ModelVersion.model_id == model.id)))
    # Core deletes: the database's ON DELETE rules remove versions and aliases and unlink
    # jobs, without the ORM trying to null foreign keys of rows it happens to hold.
    session.execute(delete(Model).where(Model.id == model.id))
    return ids


def delete_version(session: Session, model: Model, number: int) -> int:
    """Delete one version; refused (409) while an alias points at it. Returns its id."""
    version = resolve_version(session, model, number)
    pointing = sorted(
        set(session.scalars(select(ModelAlias.alias).where(ModelAlias.version_id == version.id)))
        | set(traffic.aliases_using(session, model, version.id))
    )
    if pointing:
        raise Conflict(
            f"version {number} is the target of alias(es) {', '.join(pointing)}; "
            "move or delete them first",
            details=[ErrorDetail(field="version", message=f"aliased as {a}") for a in pointing],
        )
    session.execute(delete(ModelVersion).where(ModelVersion.id == version.id))
    return version.id


def set_threshold(
    session: Session, version: ModelVersion, threshold: float | None, head: Head
) -> None:
    """Set (or clear, with None) the decision threshold of a binary classifier's version."""
    if threshold is not None and not head.binary:
        raise Unprocessable.for_field(
            "body.threshold",
            "not a binary classifier",
            summary="only binary classifiers (one sigmoid output, or softmax over two classes) "
            "have a decision threshold",
        )
    version.threshold = threshold
    session.flush()
