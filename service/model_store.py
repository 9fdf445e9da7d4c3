"""The model registry as the API sees it: lookups, aliases, uploads, deletes, and the loader cache.

Training jobs register versions (service/jobs/registry.py); this module reads them, and adds
the ones uploaded as model files. A version is addressed by number, by alias (e.g.
"production") or as the latest. Another owner's model is reported exactly like a missing one.

Deserializing a model (rebuilding it from its spec and checking every array) costs far more
than a small prediction, so loaded models are kept in a bounded in-memory LRU keyed by
(version id, created_at): the id alone is not enough because SQLite may hand a deleted row's
id to the next insert, and created_at tells the two apart. Deletes also evict explicitly.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio.to_thread
import numpy as np
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nn_core.errors import NNCoreError
from nn_core.model import Model as NNModel
from nn_core.serialize import load_model
from nn_core.spec import model_to_spec
from service.db import Database
from service.errors import Conflict, NotFound, PayloadTooLarge, ServiceError, Unprocessable
from service.models import Model, ModelAlias, ModelVersion, utcnow
from service.schemas.errors import ErrorDetail

#: Names of models created through the API (they appear in URLs and file names); the same
#: rule as a training job's model_name, so a trained model can also receive uploads.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
#: Aliases start with a letter, so a version reference is never both a number and an alias.
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
#: Means "the highest version"; cannot be used as an alias.
LATEST = "latest"
#: Cap on the arrays a model file declares, checked from the npz headers before loading.
MAX_MODEL_FILE_ARRAY_BYTES = 1 << 30

#: Version numbers are 32-bit in the database; larger ones cannot exist.
MAX_VERSION = 2**31 - 1

VersionKey = tuple[int, datetime]


def queryable(text: str, max_length: int = 1000) -> bool:
    """Whether `text` can be compared in SQL at all: Postgres refuses NUL characters in
    text parameters with an error, and such a name can never have been stored anyway."""
    return "\x00" not in text and len(text) <= max_length


# ----------------------------------------------------------------------------- the cache


class ModelCache:
    """A thread-safe LRU of loaded models, bounded by entry count and by parameter bytes."""

    def __init__(self, max_entries: int = 32, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[VersionKey, tuple[NNModel, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: VersionKey) -> NNModel | None:
        """The cached model for `key` (a hit), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def get_or_load(self, key: VersionKey, loader: Callable[[], NNModel]) -> NNModel:
        """The cached model for `key`, else `loader()`'s (loaded outside the lock)."""
        model = self.get(key)
        if model is not None:
            return model
        with self._lock:
            self.misses += 1
        model = loader()
        self._put(key, model)
        return model

    def _put(self, key: VersionKey, model: NNModel) -> None:
        size = int(model.params.nbytes) + sum(b.nbytes for b in model.named_buffers().values())
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (model, size)
            self._bytes += size
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted

    def invalidate(self, version_ids: Iterable[int]) -> None:
        """Drop every entry of these version ids (after a delete)."""
        ids = set(version_ids)
        with self._lock:
            for key in [k for k in self._entries if k[0] in ids]:
                self._bytes -= self._entries.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def version_key(version: ModelVersion) -> VersionKey:
    return (version.id, version.created_at)


# ----------------------------------------------------------------------------- lookups


def model_not_found(name: str) -> NotFound:
    return NotFound(
        f"model {_shown(name)!r} not found",
        details=[ErrorDetail(field="model", message="no such model")],
    )


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


def resolve_version(session: Session, model: Model, ref: int | str | None) -> ModelVersion:
    """A version by number, alias, or the latest (ref None or "latest"); 404 otherwise."""
    query = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if ref is None or ref == LATEST:
        found = session.scalar(query.order_by(ModelVersion.version.desc()).limit(1))
        if found is None:
            raise NotFound(
                f"model {_shown(model.name)!r} has no versions",
                details=[ErrorDetail(field="version", message="no versions")],
            )
        return found
    if isinstance(ref, int) or ref.isdigit():
        number = int(ref)
        in_range = 1 <= number <= MAX_VERSION
        found = session.scalar(query.where(ModelVersion.version == number)) if in_range else None
        if found is None:
            raise NotFound(
                f"model {_shown(model.name)!r} has no version {number}",
                details=[ErrorDetail(field="version", message="no such version")],
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
        raise NotFound(
            f"model {_shown(model.name)!r} has no alias {_shown(ref)!r}",
            details=[ErrorDetail(field="alias", message="no such alias")],
        )
    return found


def version_ref(version: int | None, alias: str | None) -> int | str | None:
    """The one reference a request may carry: a version number or an alias, not both."""
    if version is not None and alias is not None:
        raise Unprocessable(
            "give either version or alias, not both",
            details=[ErrorDetail(field="body.alias", message="conflicts with version")],
        )
    return version if version is not None else alias


def read_weights(session: Session, version: ModelVersion) -> bytes:
    weights = session.scalar(select(ModelVersion.weights).where(ModelVersion.id == version.id))
    if weights is None:
        raise NotFound(
            "this model version was deleted",
            details=[ErrorDetail(field="version", message="deleted")],
        )
    return weights


def load_version(session: Session, cache: ModelCache, version: ModelVersion) -> NNModel:
    """The loaded model of `version`, from the cache or deserialized once."""

    def loader() -> NNModel:
        try:
            return load_model(read_weights(session, version))
        except NNCoreError as exc:  # stored by us, so this is a server-side fault
            raise ServiceError(
                f"stored model version {version.version} cannot be loaded: {exc}",
                status=503,
                type="model_unavailable",
            ) from None

    return cache.get_or_load(version_key(version), loader)


# ----------------------------------------------------------------------------- writes


def check_model_name(name: str) -> None:
    # "." and ".." would be rewritten as URL path segments.
    if not MODEL_NAME_RE.fullmatch(name) or set(name) == {"."}:
        raise Unprocessable(
            f"invalid model name {_shown(name)!r}: 1-64 characters from letters, digits, "
            "'.', '_' and '-', not only dots",
            details=[ErrorDetail(field="name", message="invalid model name")],
        )


def check_alias(alias: str) -> None:
    if alias == LATEST or not ALIAS_RE.fullmatch(alias):
        raise Unprocessable(
            f"invalid alias {_shown(alias)!r}: 1-64 characters from letters, digits, '_' and "
            f"'-', starting with a letter, and not {LATEST!r}",
            details=[ErrorDetail(field="alias", message="invalid alias")],
        )


def validate_model_file(data: bytes, max_params: int) -> NNModel:
    """Load an uploaded model file fully (spec, shapes, dtypes, parameter limit) or raise 4xx."""
    _check_file_arrays(data)
    try:
        return load_model(data, max_params=max_params)
    except NNCoreError as exc:
        message = getattr(exc, "message", str(exc))
        raise Unprocessable(
            f"not a usable model file: {message}",
            details=[ErrorDetail(field="file", message=message)],
        ) from None
    except MemoryError:
        raise PayloadTooLarge(
            "the model file is too large to load",
            details=[ErrorDetail(field="file", message="too large")],
        ) from None
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
        raise Unprocessable(
            f"not a usable model file: {exc}",
            details=[ErrorDetail(field="file", message=str(exc)[:200])],
        ) from None


def _check_file_arrays(data: bytes) -> None:
    """Refuse object arrays and absurd declared sizes from the npz headers, before NumPy
    allocates anything (a crafted header could otherwise ask for terabytes)."""
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                with archive.open(member) as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    header = (
                        np.lib.format.read_array_header_1_0
                        if major == 1
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = header(fh)
                if dtype.hasobject:
                    raise _bad_file(f"array {member!r} is an object array (would need pickle)")
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError) as exc:
        raise _bad_file(f"not an nn-core model file ({exc})") from None
    if total > MAX_MODEL_FILE_ARRAY_BYTES:
        raise PayloadTooLarge(
            f"the model file declares {total:,} bytes of arrays "
            f"(limit {MAX_MODEL_FILE_ARRAY_BYTES:,})",
            details=[ErrorDetail(field="file", message="arrays too large")],
        )


def _bad_file(message: str) -> Unprocessable:
    return Unprocessable(
        f"not a usable model file: {message}",
        details=[ErrorDetail(field="file", message=message)],
    )


def add_uploaded_version(
    session: Session, owner: str, name: str, model: NNModel, weights: bytes
) -> ModelVersion:
    """Register an uploaded (already validated) model file as the next version of `name`."""
    record = _get_or_create_model(session, owner, name)
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == record.id)
    )
    version = ModelVersion(
        model_id=record.id,
        version=(latest or 0) + 1,
        spec=model_to_spec(model),
        metrics=None,
        weights=weights,
        job_id=None,
    )
    session.add(version)
    session.flush()
    return version


def _get_or_create_model(session: Session, owner: str, name: str) -> Model:
    """The owner's model, locked for numbering (FOR UPDATE; SQLite's BEGIN IMMEDIATE)."""
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


def set_alias(session: Session, model: Model, alias: str, number: int) -> ModelAlias:
    """Point `alias` at version `number` (created or moved)."""
    check_alias(alias)
    version = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == number
        )
    )
    if version is None:
        raise Unprocessable(
            f"model {_shown(model.name)!r} has no version {number}",
            details=[ErrorDetail(field="body.version", message="no such version")],
        )
    record = session.scalar(
        select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
    )
    if record is None:
        record = ModelAlias(model_id=model.id, alias=alias, version_id=version.id)
        session.add(record)
    else:
        record.version_id = version.id
        record.updated_at = utcnow()
    session.flush()
    return record


def delete_alias(session: Session, model: Model, alias: str) -> None:
    record = None
    if queryable(alias):
        record = session.scalar(
            select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
        )
    if record is None:
        raise NotFound(
            f"model {_shown(model.name)!r} has no alias {_shown(alias)!r}",
            details=[ErrorDetail(field="alias", message="no such alias")],
        )
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
        session.scalars(select(ModelAlias.alias).where(ModelAlias.version_id == version.id))
    )
    if pointing:
        raise Conflict(
            f"version {number} is the target of alias(es) {', '.join(pointing)}; "
            "move or delete them first",
            details=[ErrorDetail(field="version", message=f"aliased as {a}") for a in pointing],
        )
    session.execute(delete(ModelVersion).where(ModelVersion.id == version.id))
    return version.id


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def is_binary_classifier(spec: Any) -> bool:
    """Whether a stored spec answers one probability of a positive class (sigmoid with one
    output, or softmax over two), the models a decision threshold applies to."""
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list) or not spec["layers"]:
        return False
    last = spec["layers"][-1]
    units = last.get("units") if isinstance(last, dict) else None
    loss = spec.get("loss")
    name = loss.get("name") if isinstance(loss, dict) else loss
    return (name, units) in (("binary_crossentropy", 1), ("categorical_crossentropy", 2))


def set_threshold(session: Session, version: ModelVersion, threshold: float | None) -> None:
    if threshold is not None and not is_binary_classifier(version.spec):
        raise Unprocessable(
            "only binary classifiers (one sigmoid output, or softmax over two classes) have "
            "a decision threshold",
            details=[ErrorDetail(field="body.threshold", message="not a binary classifier")],
        )
    version.threshold = threshold
    session.flush()


def spec_summary(spec: Any) -> dict[str, Any]:
    """input_dim and loss from a stored spec (for listings that must not load weights)."""
    if not isinstance(spec, dict):
        return {}
    return {"input_dim": spec.get("input_dim"), "loss": spec.get("loss")}


@dataclass(frozen=True)
class Served:
    """A loaded model ready to predict, with the name and version it answers as."""

    name: str
    version: int
    model: NNModel
    #: The version's decision threshold for binary classifiers (None: 0.5).
    threshold: float | None = None


def load_served(
    session: Session, cache: ModelCache, owner: str, name: str, ref: int | str | None
) -> Served:
    """Resolve owner/name/ref to a version and return its (cached) loaded model.

    The hot path of every prediction: one narrow query (no spec or metrics JSON decoded),
    then the model from the cache. A miss takes the slower lookups, which name what is
    missing in their 404.
    """
    row = _served_row(session, owner, name, ref)
    if row is None:
        record = get_model(session, owner, name)
        version = resolve_version(session, record, ref)
        model = load_version(session, cache, version)
        return Served(record.name, version.version, model, version.threshold)
    version_id, number, created_at, threshold = row
    model = cache.get_or_load(
        (version_id, created_at), lambda: _load_weights(session, version_id, number)
    )
    return Served(name, number, model, threshold)


async def serve(
    database: Database, cache: ModelCache, owner: str, name: str, ref: int | str | None
) -> Served:
    """load_served for async routes: the version lookup through Database.read (on the event
    loop for SQLite); only a cache miss (weights to read and decode) takes a worker thread."""
    row = await database.read(lambda connection: _served_row(connection, owner, name, ref))
    if row is not None:
        version_id, number, created_at, threshold = row
        model = cache.get((version_id, created_at))
        if model is not None:
            return Served(name, number, model, threshold)
    return await anyio.to_thread.run_sync(_load_served, database, cache, owner, name, ref)


def _load_served(
    database: Database, cache: ModelCache, owner: str, name: str, ref: int | str | None
) -> Served:
    with database.session() as session:
        return load_served(session, cache, owner, name, ref)


def _served_row(
    session: Session | Connection, owner: str, name: str, ref: int | str | None
) -> tuple[int, int, datetime, float | None] | None:
    """(version id, number, created_at, threshold) of owner/name/ref, or None if missing."""
    if not queryable(name) or (isinstance(ref, str) and not queryable(ref)):
        return None
    params: dict[str, Any] = {"owner": owner, "name": name}
    if ref is None or ref == LATEST:
        query = _SERVED_LATEST
    elif isinstance(ref, int) or ref.isdigit():
        if not 1 <= int(ref) <= MAX_VERSION:
            return None
        query, params["number"] = _SERVED_NUMBER, int(ref)
    else:
        query, params["alias"] = _SERVED_ALIAS, ref
    found = session.execute(query, params).first()
    return None if found is None else (found[0], found[1], found[2], found[3])


# Built once: constructing a statement per request costs as much as running it.
_SERVED = (
    select(ModelVersion.id, ModelVersion.version, ModelVersion.created_at, ModelVersion.threshold)
    .join(Model, Model.id == ModelVersion.model_id)
    .where(Model.owner == bindparam("owner"), Model.name == bindparam("name"))
)
_SERVED_LATEST = _SERVED.order_by(ModelVersion.version.desc()).limit(1)
_SERVED_NUMBER = _SERVED.where(ModelVersion.version == bindparam("number"))
_SERVED_ALIAS = _SERVED.join(ModelAlias, ModelAlias.version_id == ModelVersion.id).where(
    ModelAlias.alias == bindparam("alias")
)


def _load_weights(session: Session, version_id: int, number: int) -> NNModel:
    weights = session.scalar(select(ModelVersion.weights).where(ModelVersion.id == version_id))
    if weights is None:
        raise NotFound(
            "this model version was deleted",
            details=[ErrorDetail(field="version", message="deleted")],
        )
    try:
        return load_model(weights)
    except NNCoreError as exc:  # stored by us, so this is a server-side fault
        raise ServiceError(
            f"stored model version {number} cannot be loaded: {exc}",
            status=503,
            type="model_unavailable",
        ) from None
