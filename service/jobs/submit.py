"""Creating a training job: resolve and check the spec, check limits, insert the row.

Everything a job could fail on before training starts is checked here, at submit time, so a
client hears about a bad spec, an oversized model or an unknown dataset as a 4xx naming the
field instead of as a failed job later. normalize_spec(max_params=...) counts parameters before
allocating anything, so a huge spec costs nothing to refuse.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from nn_core.errors import SpecError
from nn_core.presets import preset_spec
from nn_core.spec import normalize_spec
from service.config import Settings
from service.datasets_store import (
    find_upload,
    is_catalog_name,
    is_synthetic_name,
    missing_test_split,
    not_found,
)
from service.db import Database
from service.errors import NotFound, RateLimited, invalid
from service.models import Dataset, JobStatus, TrainingJob
from service.schemas.jobs import JobSubmit

# Bounds on the shape of a submitted spec, far above any sensible network, far below harm.
MAX_SPEC_DEPTH = 8
MAX_SPEC_NODES = 5_000
MAX_LAYERS = 64
MAX_PREPROCESS = 16
MAX_UNITS = 65_536

ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)
_PG_SUBMIT_LOCK = 0x6E6E735F6A6F62  # "nns_job": serializes one owner's submissions on Postgres


def check_spec_shape(spec: dict[str, Any]) -> None:
    """Refuse specs too deep, too big, or with too many layers or units, naming the field."""
    nodes = 0

    def walk(value: Any, path: str, depth: int) -> None:
        nonlocal nodes
        nodes += 1
        if nodes > MAX_SPEC_NODES:
            raise invalid("spec", f"has more than {MAX_SPEC_NODES} values")
        if depth > MAX_SPEC_DEPTH:
            raise invalid(path, f"is nested deeper than {MAX_SPEC_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}", depth + 1)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]", depth + 1)

    walk(spec, "spec", 0)
    layers = spec.get("layers")
    if isinstance(layers, list):
        if len(layers) > MAX_LAYERS:
            raise invalid("spec.layers", f"has {len(layers)} layers; at most {MAX_LAYERS}")
        for i, layer in enumerate(layers):
            units = layer.get("units") if isinstance(layer, dict) else None
            if isinstance(units, int) and not isinstance(units, bool) and units > MAX_UNITS:
                raise invalid(f"spec.layers[{i}].units", f"is {units}; at most {MAX_UNITS}")
    preprocess = spec.get("preprocess")
    if isinstance(preprocess, list) and len(preprocess) > MAX_PREPROCESS:
        count = len(preprocess)
        raise invalid("spec.preprocess", f"has {count} transforms; at most {MAX_PREPROCESS}")


def base_spec(body: JobSubmit) -> dict[str, Any]:
    """A copy of the submitted spec, or of the named preset's (nn_core/presets.py)."""
    if not isinstance(body.spec, str):
        return copy.deepcopy(body.spec)
    try:
        return preset_spec(body.spec, "spec")
    except SpecError as exc:
        detail = exc.message.removeprefix("spec: ")
        raise invalid("spec", detail) from None


def resolve_spec(body: JobSubmit) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted spec (or preset) with the overrides applied, and which request field set
    each value, so an override that breaks the spec is reported under the request's name."""
    spec = base_spec(body)
    origin: dict[str, str] = {}
    training = spec.get("training")
    overrides: dict[str, float | None] = {
        "epochs": body.epochs,
        "batch_size": body.batch_size,
        "seed": body.seed,
        "validation_split": body.validation_split,
    }
    for key, value in overrides.items():
        if value is None:
            continue
        if training is None:
            training = spec["training"] = {}
        if not isinstance(training, dict):
            raise invalid("spec.training", "must be an object")
        training[key] = value
        origin[f"training.{key}"] = key
    if body.learning_rate is not None:
        optimizer = spec.get("optimizer", {"name": "sgd"})
        if isinstance(optimizer, str):
            optimizer = {"name": optimizer}
        if not isinstance(optimizer, dict):
            raise invalid("spec.optimizer", "must be an object")
        spec["optimizer"] = {**optimizer, "lr": body.learning_rate}
        origin["optimizer.lr"] = "learning_rate"
    return spec, origin


def normalize(body: JobSubmit, settings: Settings) -> dict[str, Any]:
    """The complete spec to train, or Unprocessable naming the field (e.g. spec.layers[1].units)."""
    if isinstance(body.spec, dict):  # presets are ours and known to be in bounds
        check_spec_shape(body.spec)
    spec, origin = resolve_spec(body)
    try:
        normalized = normalize_spec(spec, max_params=settings.max_model_params)
    except SpecError as exc:
        field = origin.get(exc.field, f"spec.{exc.field}" if exc.field else "spec")
        prefix = f"{exc.field}: "
        detail = exc.message.removeprefix(prefix)
        raise invalid(field, detail) from None
    epochs = int(normalized["training"]["epochs"])
    if epochs > settings.max_epochs:
        field = origin.get("training.epochs", "spec.training.epochs")
        raise invalid(field, f"is {epochs}; this server allows at most {settings.max_epochs}")
    return normalized


@dataclass
class DataLineage:
    """Where a job's rows come from, copied onto the job row at submit (datasets may go)."""

    dataset_id: str | None = None
    dataset_sha256: str | None = None
    test_dataset_id: str | None = None
    test_dataset_name: str | None = None
    test_sha256: str | None = None


def resolve_dataset(session: Session, owner: str, ref: str) -> str | None:
    """The upload id for `ref`, None for a built-in name; NotFound (field "dataset") otherwise.

    An upload shadows a built-in of the same name, as in load_training_data.
    """
    upload = find_upload(session, owner, ref)
    if upload is not None:
        return upload.id
    if is_catalog_name(ref):
        return None
    raise not_found(ref)


def resolve_data(session: Session, owner: str, body: JobSubmit) -> DataLineage:
    """The upload (and test upload) a job trains on; NotFound (field "dataset" or
    "test_dataset") or Unprocessable when the test split cannot be made as asked.

    An upload shadows a built-in of the same name, as in load_training_data.
    """
    upload = find_upload(session, owner, body.dataset)
    if upload is None:
        if not is_catalog_name(body.dataset):
            raise not_found(body.dataset)
        if body.test_dataset is not None:
            raise invalid("test_dataset", "only for uploads sent with test_fraction 0")
        return DataLineage()
    lineage = DataLineage(upload.id, upload.sha256, test_sha256=upload.test_sha256)
    if upload.n_test_rows and (body.test_fraction is not None or body.test_dataset):
        field = "test_fraction" if body.test_fraction is not None else "test_dataset"
        raise invalid(field, f"does not apply: {upload.name!r} came with its own test_file")
    if body.test_dataset is None:
        if upload.test_fraction == 0 and not upload.n_test_rows and body.test_fraction is None:
            raise missing_test_split(upload.name)
        return lineage
    if body.test_fraction is not None:
        raise invalid("test_fraction", "must be absent with a test_dataset (used as is)")
    if upload.test_fraction != 0:
        raise invalid(
            "test_dataset",
            f"only for uploads sent with test_fraction 0; {upload.name!r} is split by "
            f"test_fraction {upload.test_fraction}",
        )
    test = find_upload(session, owner, body.test_dataset)
    if test is None:
        raise NotFound.for_field(
            "test_dataset", "no such dataset", summary=f"no upload {body.test_dataset[:80]!r}"
        )
    check_test_dataset(upload, test)
    lineage.test_dataset_id, lineage.test_dataset_name = test.id, body.test_dataset
    lineage.test_sha256 = test.sha256
    return lineage


def check_test_dataset(train: Dataset, test: Dataset) -> None:
    """A test upload must fit the model trained on `train`: same task, width and classes."""
    problem = None
    if test.id == train.id:
        problem = "is the training dataset itself"
    elif test.n_test_rows:
        problem = "came with its own test_file; upload the test rows on their own"
    elif test.task != train.task:
        problem = f"is a {test.task} dataset, the training one {train.task}"
    elif test.n_features != train.n_features:
        problem = f"has {test.n_features} features per row, the training one {train.n_features}"
    elif train.classes is not None:
        unknown = {str(c) for c in test.classes or []} - {str(c) for c in train.classes}
        if unknown:
            problem = f"has classes the training dataset lacks: {sorted(unknown)[:10]}"
    if problem:
        raise invalid("test_dataset", f"{test.name!r} {problem}")


def check_generator_options(body: JobSubmit, dataset_id: str | None) -> None:
    """n_samples and noise shape a generated dataset; anything else is refused, naming them."""
    for field in ("n_samples", "noise"):
        if getattr(body, field) is None:
            continue
        if dataset_id is not None or not is_synthetic_name(body.dataset):
            raise invalid(field, f"only applies to the synthetic datasets, not {body.dataset!r}")


def check_lr_range(body: JobSubmit) -> None:
    """lr_range belongs to the range test, and its rates must rise."""
    options = body.lr_range
    if options is None:
        return
    if body.kind != "lr_range_test":
        raise invalid("lr_range", 'only applies to "kind": "lr_range_test"')
    if options.max_lr <= options.min_lr:
        raise invalid("lr_range.max_lr", f"must be above min_lr ({options.min_lr})")


def hyperparameters(body: JobSubmit) -> dict[str, Any]:
    """What the client set besides the spec (and the preset's name), stored with the job."""
    values = body.model_dump(
        exclude={"spec", "dataset", "model_name", "test_dataset"}, exclude_none=True
    )
    if values.get("kind") == "train":  # the default, left out as before job kinds existed
        del values["kind"]
    if isinstance(body.spec, str):
        values["preset"] = body.spec
    return values


def active_jobs(session: Session, database: Database, owner: str) -> int:
    """The owner's queued and running jobs, counted under a per-owner lock on Postgres (held
    to the end of the transaction), so two inserting transactions cannot both squeeze in."""
    if database.is_postgres:
        session.execute(
            text("SELECT pg_advisory_xact_lock(:k, hashtext(:owner))"),
            {"k": _PG_SUBMIT_LOCK & 0x7FFFFFFF, "owner": owner},
        )
    active = session.scalar(
        select(func.count())
        .select_from(TrainingJob)
        .where(TrainingJob.owner == owner, TrainingJob.status.in_(ACTIVE_JOB_STATUSES))
    )
    return active or 0


def check_job_limit(session: Session, database: Database, settings: Settings, owner: str) -> None:
    """RateLimited when `owner` has max_jobs_per_key active jobs; call in the inserting
    transaction."""
    active = active_jobs(session, database, owner)
    if active >= settings.max_jobs_per_key:
        raise RateLimited(
            f"you already have {active} queued or running jobs, the limit is "
            f"{settings.max_jobs_per_key}; wait for one to finish or cancel one",
            retry_after_seconds=10,
            type="too_many_jobs",
        )


def create_job(database: Database, settings: Settings, owner: str, body: JobSubmit) -> TrainingJob:
    """Validate and insert a queued job; RateLimited when the owner has too many active jobs."""
    spec = normalize(body, settings)
    check_lr_range(body)
    with database.session() as session:
        lineage = resolve_data(session, owner, body)
    check_generator_options(body, lineage.dataset_id)
    with database.write_session() as session:
        check_job_limit(session, database, settings, owner)
        job = TrainingJob(
            owner=owner,
            status=JobStatus.QUEUED,
            spec=spec,
            dataset_id=lineage.dataset_id,
            dataset_name=body.dataset,
            dataset_sha256=lineage.dataset_sha256,
            test_dataset_id=lineage.test_dataset_id,
            test_dataset_name=lineage.test_dataset_name,
            test_sha256=lineage.test_sha256,
            model_name=body.model_name,
            hyperparameters=hyperparameters(body),
            total_epochs=1 if body.kind == "lr_range_test" else int(spec["training"]["epochs"]),
        )
        session.add(job)
        session.flush()
        return job
