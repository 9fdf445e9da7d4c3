"""SQLAlchemy 2.0 ORM: the database is the source of truth for keys, datasets, jobs and models.

Portable between SQLite and Postgres: generic JSON and LargeBinary columns, strings with CHECK
constraints instead of native enums, and timestamps that always come back timezone-aware UTC.
Blob columns are deferred so listing rows never loads datasets, checkpoints or weights.
Changing this file means adding an Alembic revision (see service/migrate.py).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations (and SQLite batch table rebuilds) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """Opaque, URL-safe, unguessable ids for resources named in URLs (e.g. job_9f2c...)."""
    return f"{prefix}_{secrets.token_hex(8)}"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite keeps no offset and returns naive values; Postgres returns aware values in the
    session time zone. Both come back as UTC here, and naive input is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use timezone-aware UTC (service.models.utcnow)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQL NULL (not JSON null) for absent values, so "IS NULL" means what it says.
JSONValue = JSON(none_as_null=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class DatasetSource(StrEnum):
    BUILTIN = "builtin"
    UPLOAD = "upload"


class DatasetStorage(StrEnum):
    """Where an upload's arrays are: the `data` column, or a blob file (service/blobs.py)."""

    DATABASE = "database"
    FILE = "file"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class ApiKey(Base):
    """An API key. Only a sha256 of the secret is stored; keys are 32 random bytes, so no KDF."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Dataset(Base):
    """A built-in catalog entry (data loaded by nn_core) or an upload (data stored here)."""

    __tablename__ = "datasets"
    __table_args__ = (
        CheckConstraint(_in("source", DatasetSource), name="source"),
        CheckConstraint(_in("storage", DatasetStorage), name="storage"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ds"))
    owner: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(16))
    task: Mapped[str] = mapped_column(String(32))
    n_rows: Mapped[int] = mapped_column(Integer)
    n_features: Mapped[int] = mapped_column(Integer)
    classes: Mapped[Any | None] = mapped_column(JSONValue)
    class_balance: Mapped[Any | None] = mapped_column(JSONValue)
    test_fraction: Mapped[float | None] = mapped_column(Float)
    # Normalized npz (allow_pickle=False) of uploads stored in the database (storage
    # "database": rows from before 0008, or NNS_DATASET_STORAGE=database); NULL otherwise.
    data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    # The npz's size; with storage "file" also what its blob file must measure.
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    # "file": the npz is the blob file named by data_sha256 (service/dataset_blobs.py).
    storage: Mapped[str] = mapped_column(
        String(16), default=DatasetStorage.DATABASE.value, server_default="database"
    )
    data_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # SHA-256 of the uploaded file's bytes as the user has them (compressed or not), and of
    # the test_file when one came with it; NULL for uploads made before they were recorded.
    sha256: Mapped[str | None] = mapped_column(String(64))
    test_sha256: Mapped[str | None] = mapped_column(String(64))
    # Rows that came from the test_file: the last ones stored; NULL when the split is ours.
    n_test_rows: Mapped[int | None] = mapped_column(Integer)
    # How the upload was read: label_column, header, compression, files (name, sha256, size).
    file_info: Mapped[Any | None] = mapped_column(JSONValue)


class TrainingJob(Base):
    """One training run; its row is the job's state, a queue only ever carries its id."""

    __tablename__ = "training_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", JobStatus), name="status"),
        Index("ix_training_jobs_owner_created_at", "owner", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    owner: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    spec: Mapped[Any] = mapped_column(JSONValue)
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    dataset_name: Mapped[str] = mapped_column(String(200), default="")
    # Lineage, copied at submit so it outlives the datasets: the SHA-256 of the training
    # dataset's file, and of the file the test rows come from when it is another one (the
    # upload's test_file, or the test_dataset named at submit).
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    test_dataset_id: Mapped[str | None] = mapped_column(String(40))
    test_dataset_name: Mapped[str | None] = mapped_column(String(200))
    test_sha256: Mapped[str | None] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(200))
    hyperparameters: Mapped[Any | None] = mapped_column(JSONValue)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    total_epochs: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[Any | None] = mapped_column(JSONValue)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    # Plain-words training warnings (nn_core/training_warnings.py): code, message, epoch.
    warnings: Mapped[Any | None] = mapped_column(JSONValue)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # use_alter: model_versions.job_id points back here, so one of the two FKs is added last.
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL", use_alter=True)
    )


class MetricPoint(Base):
    """Metrics after one epoch; (job_id, epoch) is unique so a resumed job cannot duplicate one."""

    __tablename__ = "metric_points"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[Any] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobDiagnostics(Base):
    """Per-layer statistics of one epoch (nn_core/diagnostics.py), one JSON row per epoch."""

    __tablename__ = "job_diagnostics"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    record: Mapped[Any] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Checkpoint(Base):
    """Serialized training state (model + optimizer + RNG) after an epoch; the latest is kept."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    state: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Model(Base):
    """A named model of one owner; its versions hold the weights."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", passive_deletes=True, order_by="ModelVersion.version"
    )
    aliases: Mapped[list[ModelAlias]] = relationship(back_populates="model", passive_deletes=True)


class ModelVersion(Base):
    """An immutable numbered version: spec, final test metrics (incl. confusion matrix), weights."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[Any] = mapped_column(JSONValue)
    metrics: Mapped[Any | None] = mapped_column(JSONValue)
    weights: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    # NULL for versions uploaded as a model file, or whose job was deleted.
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("training_jobs.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Decision threshold for binary classifiers (e.g. spam scoring); NULL means 0.5. Set by
    # the owner with PATCH, since the right trade-off is a product decision, not a weight.
    threshold: Mapped[float | None] = mapped_column(Float)
    # Set when a sweep registered this version: the sweep and its best trial's parameters.
    sweep_id: Mapped[str | None] = mapped_column(String(40))
    sweep_params: Mapped[Any | None] = mapped_column(JSONValue)

    model: Mapped[Model] = relationship(back_populates="versions")


class ModelAlias(Base):
    """A movable name (e.g. "production") for one version of a model, or a weighted split
    of traffic between versions with an optional shadow (service/registry/traffic.py)."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(64))
    #: The version answering most traffic (all of it when `traffic` is NULL).
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    #: NULL for a plain alias (the hot path decodes nothing); else {"split": [[version_id,
    #: weight], ...], "shadow": version_id | null} (service/registry/traffic.py).
    traffic: Mapped[Any | None] = mapped_column(JSONValue)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    model: Mapped[Model] = relationship(back_populates="aliases")
    version: Mapped[ModelVersion] = relationship()


class SweepStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_SWEEP_STATUSES = frozenset(
    {SweepStatus.SUCCEEDED, SweepStatus.FAILED, SweepStatus.CANCELLED}
)


class TrialState(StrEnum):
    """A sweep trial's state; RUNNING covers its job being queued or training."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Sweep(Base):
    """A hyperparameter study (service/sweeps/): its rows and its trials' rows are the whole
    Optuna study state, rebuilt in memory for each decision, so no Optuna tables exist."""

    __tablename__ = "sweeps"
    __table_args__ = (
        CheckConstraint(_in("status", SweepStatus), name="status"),
        Index("ix_sweeps_owner_created_at", "owner", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sweep"))
    owner: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=SweepStatus.QUEUED, index=True)
    model_name: Mapped[str] = mapped_column(String(200))
    dataset_id: Mapped[str | None] = mapped_column(String(40))
    dataset_name: Mapped[str] = mapped_column(String(200))
    # The normalized spec every trial starts from, before its parameters are applied.
    spec: Mapped[Any] = mapped_column(JSONValue)
    search_space: Mapped[Any] = mapped_column(JSONValue)
    objective_metric: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))
    n_trials: Mapped[int] = mapped_column(Integer)
    max_parallel: Mapped[int] = mapped_column(Integer)
    sampler: Mapped[str] = mapped_column(String(32))
    pruner: Mapped[Any] = mapped_column(JSONValue)
    seed: Mapped[int] = mapped_column(Integer)
    initial_trials: Mapped[Any | None] = mapped_column(JSONValue)
    # What every trial job gets besides its parameters: {"hyperparameters": {test_fraction,
    # n_samples, ...}, "lineage": the dataset's id and SHA-256 as service/jobs/submit.py found}.
    job_options: Mapped[Any | None] = mapped_column(JSONValue)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    best_trial_number: Mapped[int | None] = mapped_column(Integer)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    importances: Mapped[Any | None] = mapped_column(JSONValue)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SweepTrial(Base):
    """One trial: its number (unique in the sweep, so no trial is created twice), its
    parameters and the training job that runs it. Intermediate values are the job's metric
    points. Only the best complete trial keeps its weights, until the sweep registers them."""

    __tablename__ = "sweep_trials"
    __table_args__ = (
        UniqueConstraint("sweep_id", "number"),
        CheckConstraint(_in("state", TrialState), name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("training_jobs.id", ondelete="SET NULL"), unique=True
    )
    state: Mapped[str] = mapped_column(String(16), default=TrialState.RUNNING)
    params: Mapped[Any] = mapped_column(JSONValue)
    value: Mapped[float | None] = mapped_column(Float)
    # Optuna's per-trial bookkeeping (samplers' and pruners' system attributes).
    system_attrs: Mapped[Any | None] = mapped_column(JSONValue)
    test_metrics: Mapped[Any | None] = mapped_column(JSONValue)
    weights: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Webhook(Base):
    """A URL one owner registered for some events (service/webhooks/). The signing secret
    is kept as issued: the service must sign with it, so it cannot be stored as a hash."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("wh"))
    owner: Mapped[str] = mapped_column(String(100), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[Any] = mapped_column(JSONValue)
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """The outbox: one event for one webhook, written in the transaction of the state change
    it reports, so a restart loses none. A delivery loop claims due rows (claimed_by and
    claimed_until: a lease) and posts them until delivered or out of attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("state", WebhookDeliveryState), name="state"),
        Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msg"))
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Any] = mapped_column(JSONValue)
    state: Mapped[str] = mapped_column(String(16), default=WebhookDeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """The delivery log: one row per POST tried, with its status code or error."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_webhook_id_created_at", "webhook_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
