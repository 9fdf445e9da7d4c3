"""Looking models and versions up. Another owner's model is reported exactly like a missing one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.models import Model, ModelAlias, ModelVersion, TrainingJob
from service.registry.names import LATEST, MAX_VERSION, queryable, shown


def model_not_found(name: str) -> NotFound:
    return NotFound.for_field("model", "no such model", summary=f"model {shown(name)!r} not found")


def alias_not_found(model: Model, alias: str) -> NotFound:
    return NotFound.for_field(
        "alias",
        "no such alias",
        summary=f"model {shown(model.name)!r} has no alias {shown(alias)!r}",
    )


def version_deleted() -> NotFound:
    return NotFound.for_field("version", "deleted", summary="this model version was deleted")


def list_models(session: Session, owner: str) -> list[Model]:
    return list(session.scalars(select(Model).where(Model.owner == owner).order_by(Model.name)))


def find_model(session: Session, owner: str, name: str) -> Model | None:
    if not queryable(name):
        return None
    return session.scalar(select(Model).where(Model.owner == owner, Model.name == name))


def get_model(session: Session, owner: str, name: str) -> Model:
    model = find_model(session, owner, name)
    if model is None:
        raise model_not_found(name)
    return model


def versions_of(session: Session, model: Model) -> list[ModelVersion]:
    """All versions, oldest first (weights not loaded)."""
    query = select(ModelVersion).where(ModelVersion.model_id == model.id)
    return list(session.scalars(query.order_by(ModelVersion.version)))


def version_numbers(reader: Session | Connection, owner: str, name: str) -> list[int]:
    """The version numbers of the owner's model `name`, oldest first ([] if none)."""
    if not queryable(name):
        return []
    query = (
        select(ModelVersion.version)
        .join(Model, Model.id == ModelVersion.model_id)
        .where(Model.owner == owner, Model.name == name)
        .order_by(ModelVersion.version)
    )
    return list(reader.execute(query).scalars())


def aliases_of(session: Session, model: Model) -> dict[str, int]:
    """alias -> version number."""
    query = (
        select(ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelAlias.version_id == ModelVersion.id)
        .where(ModelAlias.model_id == model.id)
        .order_by(ModelAlias.alias)
    )
    return {alias: version for alias, version in session.execute(query)}


def weight_sizes(session: Session, model: Model) -> dict[int, int]:
    """version id -> size of the stored model file in bytes (without loading the blobs)."""
    query = select(ModelVersion.id, func.length(ModelVersion.weights)).where(
        ModelVersion.model_id == model.id
    )
    return {version_id: int(size or 0) for version_id, size in session.execute(query)}


def lineage_of(session: Session, model: Model) -> dict[int, dict[str, str | None]]:
    """Per version id, the data its training job used (name and SHA-256s, recorded on the
    job at submit, so they hold after the dataset is deleted); versions without a job lack."""
    rows = session.execute(
        select(
            ModelVersion.id,
            TrainingJob.dataset_name,
            TrainingJob.dataset_sha256,
            TrainingJob.test_dataset_name,
            TrainingJob.test_sha256,
        )
        .join(TrainingJob, TrainingJob.id == ModelVersion.job_id)
        .where(ModelVersion.model_id == model.id)
    )
    return {
        row.id: {
            "dataset": row.dataset_name,
            "dataset_sha256": row.dataset_sha256,
            "test_dataset": row.test_dataset_name,
            "test_sha256": row.test_sha256,
        }
        for row in rows
    }


def resolve_version(session: Session, model: Model, ref: int | str | None) -> ModelVersion:
    """A version by number, alias, or the latest (ref None or "latest"); 404 otherwise."""
    query = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if ref is None or ref == LATEST:
        found = session.scalar(query.order_by(ModelVersion.version.desc()).limit(1))
        if found is None:
            raise NotFound.for_field(
                "version", "no versions", summary=f"model {shown(model.name)!r} has no versions"
            )
        return found
    if isinstance(ref, int) or ref.isdigit():
        number = int(ref)
        in_range = 1 <= number <= MAX_VERSION
        found = session.scalar(query.where(ModelVersion.version == number)) if in_range else None
        if found is None:
            raise NotFound.for_field(
                "version",
                "no such version",
                summary=f"model {shown(model.name)!r} has no version {number}",
            )
        return found
    found = None
    if queryable(ref):
        found = session.scalar(
            select(ModelVersion)
            .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
            .where(ModelAlias.model_id == model.id, ModelAlias.alias == ref)
        )
    if found is None:
        raise alias_not_found(model, ref)
    return found


def read_weights(session: Session, version_id: int) -> bytes:
    weights = session.scalar(select(ModelVersion.weights).where(ModelVersion.id == version_id))
    if weights is None:
        raise version_deleted()
    return weights


def spec_summary(spec: Any) -> dict[str, Any]:
    """input_dim and loss from a stored spec (for listings that must not load weights)."""
    if not isinstance(spec, dict):
        return {}
    return {"input_dim": spec.get("input_dim"), "loss": spec.get("loss")}


def get_alias(session: Session, model: Model, alias: str) -> ModelAlias:
    """The alias row, or the 404 naming it."""
    record = None
    if queryable(alias):
        record = session.scalar(
            select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
        )
    if record is None:
        raise alias_not_found(model, alias)
    return record
