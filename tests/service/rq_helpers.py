"""Helpers for the scale-out tests: real `nn-service worker` processes, a private Redis server,
and a look at which worker owns a job."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis
from jobs_helpers import job_settings, running_app
from rq import Queue
from server_process import NN_SERVICE, free_port
from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.models import TrainingJob

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@contextlib.contextmanager
def rq_test_settings(
    postgres_url: str, redis_url: str, data_dir: Path, **overrides: Any
) -> Iterator[Settings]:
    """Settings on a test's own Postgres schema and the shared Redis with a queue of the
    test's own, deleted afterwards."""
    settings = job_settings(
        postgres_url,
        data_dir,
        runner="rq",
        redis_url=redis_url,
        rq_queue=f"nns-test-{uuid.uuid4().hex[:10]}",
        **overrides,
    )
    yield settings
    connection = redis.Redis.from_url(redis_url)
    Queue(settings.rq_queue, connection=connection).delete(delete_jobs=True)
    connection.close()


@contextlib.contextmanager
def worker_pool(log_dir: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `nn-service worker` processes (`start(settings, **env)`); all are killed when
    the block ends."""
    started: list[WorkerProcess] = []

    def start(settings: Settings, **env: str) -> WorkerProcess:
        worker = WorkerProcess(worker_env(settings, **env), log_dir / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill_group()


@contextlib.asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[tuple[Database, httpx.AsyncClient]]:
    """The app started (its RQ runner too), and a client with the admin key."""
    async with running_app(settings) as (application, client):
        yield application.state.db, client


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a worker that shares `settings` (database, Redis, queue, timings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNS_") and k != "DATABASE_URL"}
    values = {
        "DATABASE_URL": settings.database_url,
        "RUNNER": "rq",
        "REDIS_URL": settings.redis_url,
        "RQ_QUEUE": settings.rq_queue,
        "DATA_DIR": str(settings.data_dir),
        "HEARTBEAT_SECONDS": str(settings.heartbeat_seconds),
        "LEASE_SECONDS": str(settings.lease_seconds),
        "CANCEL_GRACE_SECONDS": str(settings.cancel_grace_seconds),
        "CHECKPOINT_EVERY": str(settings.checkpoint_every),
        "JOB_MAX_ATTEMPTS": str(settings.job_max_attempts),
    }
    env.update({f"NNS_{k}": v for k, v in values.items()})
    # Two workers share this machine's CPUs: one BLAS thread each.
    env.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    env.update(extra)
    return env


class WorkerProcess:
    """`nn-service worker` in its own session (so a test can freeze it with its children)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                [str(NN_SERVICE), "worker"],
                cwd=log_path.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def children(self) -> list[int]:
        """Pids of this worker's live child processes (its training process, if any)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def signal_group(self, signum: int) -> None:
        os.killpg(self.pid, signum)

    def stop(self, timeout: float = 20) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
        return self.process.returncode

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()


def owner_pid(database: Database, job_id: str) -> int | None:
    """The pid of the worker process that holds the job's claim (from its worker id)."""
    with database.session() as session:
        worker_id = session.scalar(select(TrainingJob.worker_id).where(TrainingJob.id == job_id))
    if not worker_id:
        return None
    return int(worker_id.split(":")[1])


class RedisServer:
    """A private redis-server on a free port: restartable and flushable without touching the
    machine's shared Redis. No persistence, like a Redis that loses everything on restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def crash(self) -> None:
        """kill -9: everything in memory is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
