"""Service configuration, read from NNS_* environment variables and a .env file.

One `Settings` object is built at start-up and passed down explicitly (app factory, CLI,
job processes), so tests can run many differently configured services in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    """All knobs of the service; every field can be set as NNS_<FIELD> (e.g. NNS_PORT=9000)."""

    model_config = SettingsConfigDict(
        env_prefix="NNS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    # Storage. The plain DATABASE_URL (as set by most hosting platforms) is accepted too.
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("NNS_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; empty means the SQLite file nns.db inside data_dir "
        "(sqlite:///./data/nns.db with the default data_dir).",
    )
    data_dir: Path = Path("./data")
    dataset_storage: Literal["files", "database"] = Field(
        default="files",
        description="where new uploads' arrays are stored: files under data_dir/blobs (keeps "
        "them out of the database and its WAL; workers on other machines must share that "
        "directory) or the database (every worker reads them from there)",
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)

    # HTTP server.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Connection limits (service/http_limits.py): slow or stalled clients are disconnected.
    http_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a request's head must arrive within this long of the connection opening "
        "(or of its first byte on a kept-alive connection), else the connection is closed",
    )
    http_body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="longest pause between two reads of a request body"
    )
    http_max_head_bytes: int = Field(
        default=65536,
        ge=1024,
        description="largest request head (request line and headers); larger answers 431",
    )
    http_keep_alive_seconds: float = Field(
        default=5.0, gt=0, description="an idle kept-alive connection is closed after this"
    )
    http_max_connections: int = Field(
        default=1000,
        ge=1,
        description="open connections (or requests in progress) per server process beyond "
        "which requests are answered 503",
    )

    # Job running.
    runner: Literal["embedded", "rq"] = "embedded"
    redis_url: str = "redis://127.0.0.1:6379/0"
    rq_queue: str = Field(default="nns-training", min_length=1, description="RQ queue name")
    max_concurrent_jobs: int = Field(default=2, ge=1, description="jobs running at once, total")
    max_jobs_per_key: int = Field(
        default=4, ge=1, description="queued + running jobs one owner may have at once"
    )
    job_timeout_seconds: float = Field(default=3600.0, gt=0)
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    lease_seconds: float = Field(
        default=15.0, gt=0, description="a running job whose heartbeat is older is dead"
    )
    checkpoint_every: int = Field(default=5, ge=1, description="epochs between checkpoints")
    job_max_attempts: int = Field(default=3, ge=1)
    cancel_grace_seconds: float = Field(default=5.0, ge=0)

    # Limits on what clients may send or ask for.
    max_body_bytes: int = Field(default=4 * MiB, ge=0)
    max_upload_bytes: int = Field(default=128 * MiB, ge=0)
    max_dataset_bytes: int = Field(
        default=256 * MiB,
        ge=1,
        description="decoded size of one dataset upload (unpacked files, declared arrays, the "
        "stored X and y); checked before decompressing or allocating where the size is known",
    )
    dataset_quota_bytes: int = Field(
        default=1024 * MiB, ge=0, description="stored dataset bytes per owner; 0 = unlimited"
    )
    dataset_quota_count: int = Field(
        default=100, ge=0, description="stored datasets per owner; 0 = unlimited"
    )
    max_model_params: int = Field(default=5_000_000, ge=1)
    max_epochs: int = Field(default=1000, ge=1)
    batch_chunk_rows: int = Field(
        default=10_000,
        ge=1,
        description="rows a batch prediction predicts and writes at a time (bounds its memory)",
    )
    batch_result_ttl_hours: float = Field(
        default=168.0,
        ge=0,
        description="hours a batch prediction's result file is kept after it succeeded; "
        "0 = keep forever (service/jobs/batch_retention.py)",
    )
    batch_cleanup_seconds: float = Field(
        default=300.0, gt=0, description="seconds between passes that remove expired results"
    )
    predict_rate_limit: int = Field(
        default=6000, ge=0, description="prediction requests per minute per key; 0 = unlimited"
    )

    # Webhooks (service/webhooks/).
    webhook_allow_hosts: str = Field(
        default="",
        description="comma-separated host names, IPs or CIDRs webhooks may reach although "
        "they are loopback, private or link-local (e.g. 127.0.0.1 for a local receiver)",
    )
    webhook_retry_seconds: str = Field(
        default="5,30,120,600,3600",
        description="comma-separated waits before each retry of a failed delivery; one "
        "attempt more than waits is made",
    )
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, description="connect and read")
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=0)
    webhook_lease_seconds: float = Field(
        default=60.0, gt=0, description="a claimed delivery not settled by then is retried"
    )

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir.as_posix()}/nns.db"
        if self.lease_seconds <= self.heartbeat_seconds:
            raise ValueError("lease_seconds must be longer than heartbeat_seconds")
        try:
            delays = [float(p) for p in self.webhook_retry_seconds.split(",") if p.strip()]
        except ValueError:
            raise ValueError("webhook_retry_seconds: comma-separated seconds (5,30,120)") from None
        if any(d < 0 for d in delays):
            raise ValueError("webhook_retry_seconds: waits cannot be negative")
        return self

    @property
    def admin_key_path(self) -> Path:
        """Where the first-start admin key is written (mode 0600)."""
        return self.data_dir / "admin-key"
