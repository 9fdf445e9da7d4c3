"""The one way a prediction route gets its model: resolve what the request names, load it
through the app's model cache, and answer 404/409 naming what is missing.

Every prediction route (`:predict`, V2 metadata and infer, /v1/mnist/predict,
/v1/spam/score, a job's checkpoint predict) calls `serve(database, cache, owner, target)`
with a target: a model version (`VersionTarget`: a name and a number, alias or the latest)
or a running job's latest checkpoint (`CheckpointTarget`).

The hot path is one narrow query (no spec or metrics JSON decoded), run through
Database.read (on the event loop for SQLite), then the model from the cache. A miss (weights
to read and decode, or a 404 to explain) takes a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from nn_core.errors import NNCoreError
from nn_core.model import Model as NNModel
from nn_core.serialize import load_model, load_state
from service.config import Settings
from service.db import Database
from service.errors import Conflict, ServiceError
from service.hot_select import HotSelect
from service.jobs.views import job_not_found
from service.models import Checkpoint, Model, ModelAlias, ModelVersion, TrainingJob
from service.observability import note_served
from service.registry import reads, traffic
from service.registry.cache import CacheKey, ModelCache, checkpoint_key, version_key
from service.registry.names import LATEST, MAX_VERSION, queryable

Reader = Session | Connection


@dataclass(frozen=True)
class Served:
    """A loaded model ready to predict, with what it answers as."""

    name: str
    model: NNModel
    #: The version number; None for a checkpoint (not a version yet).
    version: int | None = None
    #: The version's decision threshold for binary classifiers (None: the head's default).
    threshold: float | None = None
    #: The epoch a checkpoint was taken after; None for a version.
    epoch: int | None = None
    #: The id of the version to mirror this request to (an alias's shadow), if any.
    shadow: int | None = None

    @property
    def number(self) -> int:
        """The version number of a model served from a VersionTarget."""
        if self.version is None:
            raise TypeError(f"{self.name!r} is served from a checkpoint, not a version")
        return self.version


@dataclass(frozen=True)
class _Found:
    """What the narrow lookup found: the cache key and how to describe the model."""

    key: CacheKey
    row_id: int
    name: str
    version: int | None = None
    threshold: float | None = None
    epoch: int | None = None
    shadow: int | None = None

    def served(self, model: NNModel) -> Served:
        return Served(self.name, model, self.version, self.threshold, self.epoch, self.shadow)


@dataclass(frozen=True)
class VersionTarget:
    """A model version by number, by alias, or the latest (ref None or "latest")."""

    name: str
    ref: int | str | None = None

    def find(self, reader: Reader, owner: str) -> _Found | None:
        if not queryable(self.name) or (isinstance(self.ref, str) and not queryable(self.ref)):
            return None
        params: dict[str, Any] = {"owner": owner, "name": self.name}
        ref = self.ref
        if ref is None or ref == LATEST:
            query = _VERSION_LATEST
        elif isinstance(ref, int) or ref.isdigit():
            if not 1 <= int(ref) <= MAX_VERSION:
                return None
            query, params["number"] = _VERSION_NUMBER, int(ref)
        else:
            return self._find_alias(reader, params, ref)
        row = query.first(reader, params)
        if row is None:
            return None
        version_id, number, created_at, threshold = row
        return _Found(version_key(version_id, created_at), version_id, self.name, number, threshold)

    def _find_alias(self, reader: Reader, params: dict[str, Any], alias: str) -> _Found | None:
        """A plain alias is the one row; a split alias draws a version by weight (a second
        narrow query when the draw is not its heaviest share) and carries its shadow."""
        params["alias"] = alias
        row = _VERSION_ALIAS.first(reader, params)
        if row is None:
            return None
        version_id, number, created_at, threshold, stored = row
        shadow = None
        if stored is not None:
            chosen, shadow = traffic.pick(stored)
            if chosen != version_id:
                row = _VERSION_ID.first(reader, {"id": chosen})
                if row is None:  # deleted meanwhile (refused while aliased, so a race)
                    return None
                version_id, number, created_at, threshold = row
        key = version_key(version_id, created_at)
        return _Found(key, version_id, self.name, number, threshold, shadow=shadow)

    def missing(self, session: Session, owner: str) -> ServiceError:
        """The 404 naming what is missing: the model, its versions, or the alias."""
        record = reads.get_model(session, owner, self.name)
        reads.resolve_version(session, record, self.ref)  # raises the precise 404
        return reads.version_deleted()

    def load(self, session: Session, found: _Found, settings: Settings) -> NNModel:
        return _load_version(session, found.row_id, found.version)


@dataclass(frozen=True)
class CheckpointTarget:
    """The latest checkpoint of a job (a model while it trains)."""

    job_id: str

    def find(self, reader: Reader, owner: str) -> _Found | None:
        if not queryable(self.job_id):
            return None
        row = _CHECKPOINT.first(reader, {"owner": owner, "job_id": self.job_id})
        if row is None:
            return None
        checkpoint_id, epoch, model_name = row
        key = checkpoint_key(checkpoint_id, self.job_id, epoch)
        return _Found(key, checkpoint_id, model_name, epoch=epoch)

    def missing(self, session: Session, owner: str) -> ServiceError:
        """404 for another owner's or no job; 409 for a job without a checkpoint now."""
        query = select(TrainingJob.id).where(
            TrainingJob.id == self.job_id, TrainingJob.owner == owner
        )
        if not queryable(self.job_id) or session.scalar(query) is None:
            return job_not_found(self.job_id)
        return self._none_now()

    def _none_now(self) -> Conflict:
        return Conflict(
            f"job {self.job_id!r} has no checkpoint right now; a finished job's model is served "
            "by POST /v1/models/{name}:predict",
            type="no_checkpoint",
        )

    def load(self, session: Session, found: _Found, settings: Settings) -> NNModel:
        state = session.scalar(select(Checkpoint.state).where(Checkpoint.id == found.row_id))
        if state is None:  # the job finished or replaced it meanwhile
            raise self._none_now()
        return load_state(state, max_params=settings.max_model_params).model


Target = VersionTarget | CheckpointTarget


async def serve(database: Database, cache: ModelCache, owner: str, target: Target) -> Served:
    """The model `target` names for `owner`, loaded (from the cache when it can be)."""
    found = await database.read(lambda reader: target.find(reader, owner))
    if found is not None:
        model = cache.get(found.key)
        if model is not None:
            note_served(found.name, found.version)
            return found.served(model)
    served = await anyio.to_thread.run_sync(_serve_slowly, database, cache, owner, target)
    note_served(served.name, served.version)
    return served


async def serve_shadow(database: Database, cache: ModelCache, name: str, version_id: int) -> Served:
    """The shadow version (by id, as an alias stores it), loaded through the cache; a
    ServiceError if it is gone (the caller swallows and counts it)."""
    found = await database.read(lambda reader: _VERSION_ID.first(reader, {"id": version_id}))
    if found is None:
        raise reads.version_deleted()
    version_id, number, created_at, threshold = found
    key = version_key(version_id, created_at)
    model = cache.get(key)
    if model is None:

        def load() -> NNModel:
            with database.session() as session:
                return cache.get_or_load(key, lambda: _load_version(session, version_id, number))

        model = await anyio.to_thread.run_sync(load)
    return Served(name, model, number, threshold)


def _serve_slowly(database: Database, cache: ModelCache, owner: str, target: Target) -> Served:
    with database.session() as session:
        found = target.find(session, owner)
        if found is None:
            raise target.missing(session, owner)
        settings = database.settings
        model = cache.get_or_load(found.key, lambda: target.load(session, found, settings))
        return found.served(model)


def load_version(session: Session, cache: ModelCache, version: ModelVersion) -> NNModel:
    """The loaded model of a version row already looked up (e.g. to ask its head)."""
    key = version_key(version.id, version.created_at)
    return cache.get_or_load(key, lambda: _load_version(session, version.id, version.version))


def _load_version(session: Session, version_id: int, number: int | None) -> NNModel:
    weights = reads.read_weights(session, version_id)
    try:
        return load_model(weights)
    except NNCoreError as exc:  # stored by us, so this is a server-side fault
        raise ServiceError(
            f"stored model version {number} cannot be loaded: {exc}",
            status=503,
            type="model_unavailable",
        ) from None


# Built once: constructing a statement per request costs as much as running it.
_VERSION = (
    select(ModelVersion.id, ModelVersion.version, ModelVersion.created_at, ModelVersion.threshold)
    .join(Model, Model.id == ModelVersion.model_id)
    .where(Model.owner == bindparam("owner"), Model.name == bindparam("name"))
)
_VERSION_LATEST = HotSelect(_VERSION.order_by(ModelVersion.version.desc()).limit(1))
_VERSION_NUMBER = HotSelect(_VERSION.where(ModelVersion.version == bindparam("number")))
_VERSION_ALIAS = HotSelect(
    _VERSION.add_columns(ModelAlias.traffic)
    .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
    .where(ModelAlias.alias == bindparam("alias"))
)
_VERSION_ID = HotSelect(
    select(
        ModelVersion.id, ModelVersion.version, ModelVersion.created_at, ModelVersion.threshold
    ).where(ModelVersion.id == bindparam("id"))
)
_CHECKPOINT = HotSelect(
    select(Checkpoint.id, Checkpoint.epoch, TrainingJob.model_name)
    .join(TrainingJob, TrainingJob.id == Checkpoint.job_id)
    .where(TrainingJob.id == bindparam("job_id"), TrainingJob.owner == bindparam("owner"))
    .order_by(Checkpoint.epoch.desc())
    .limit(1)
)
