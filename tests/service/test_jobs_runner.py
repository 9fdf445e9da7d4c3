"""The embedded runner with real training subprocesses: crashes, resume, limits, recovery.

Faults are real: training processes are killed with SIGKILL or frozen with SIGSTOP, and jobs
left behind by a dead server are reproduced in the database as that server leaves them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jobs_helpers import (
    job_settings,
    row_is_free,
    running_app,
    slow_spec,
    wait_for_job,
    xor_spec,
)
from sqlalchemy import select, update
from waiting import ProcessWatch, process_alive, until

from nn_core.datasets.catalog import load_dataset
from nn_core.spec import build_model
from nn_core.training import Trainer
from service.config import Settings
from service.db import Database
from service.jobs import processes, store
from service.jobs.outcome import JobOutcome
from service.jobs.run import run_training
from service.models import JobStatus, MetricPoint, TrainingJob, utcnow

pytestmark = pytest.mark.anyio


async def _submit(client: httpx.AsyncClient, spec: dict[str, Any], name: str = "m") -> str:
    response = await client.post(
        "/v1/jobs", json={"spec": spec, "dataset": "xor", "model_name": name}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _done(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


def _epochs(database: Database, job_id: str) -> list[int]:
    with database.session() as session:
        return list(
            session.scalars(
                select(MetricPoint.epoch)
                .where(MetricPoint.job_id == job_id)
                .order_by(MetricPoint.epoch)
            )
        )


def _history(database: Database, job_id: str) -> list[dict[str, Any]]:
    with database.session() as session:
        points = session.scalars(
            select(MetricPoint).where(MetricPoint.job_id == job_id).order_by(MetricPoint.epoch)
        ).all()
        return [p.metrics for p in points]


async def _pid_of(app: FastAPI, job_id: str) -> int:
    pid: int = await until(
        lambda: app.state.runner.process_ids().get(job_id), 20, f"job {job_id}'s process"
    )
    return pid


async def _signal_mid_job(
    app: FastAPI, client: httpx.AsyncClient, spec: dict[str, Any], epoch: int, signum: int
) -> tuple[str, int]:
    """Submit `spec`, and send `signum` to its training process once `epoch` epochs are done.
    Returns the job id and the pid signalled."""
    job_id = await _submit(client, spec)
    pid = await _pid_of(app, job_id)
    await wait_for_job(client, job_id, lambda j: j["progress"]["epoch"] >= epoch)
    os.kill(pid, signum)
    return job_id, pid


async def _freeze_between_writes(app: FastAPI, job_id: str, pid: int) -> None:
    """SIGSTOP the training process at a moment it holds no lock on the job's row (SQLite's
    write lock, Postgres's row lock): frozen inside its epoch's write, it would make every
    other writer wait (a case the lease test covers), not show how cancel escalates."""
    database: Database = app.state.db
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        if row_is_free(database, job_id):
            return
        os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(0.02)
    raise AssertionError("the training process always held the job's lock")


@pytest.mark.slow
async def test_killed_training_process_resumes_from_its_checkpoint(
    database_url: str, tmp_path: Path
) -> None:
    # The runner sees its child die at once; a long lease keeps a loaded machine's slow
    # heartbeat from counting as a third attempt.
    settings = job_settings(database_url, tmp_path / "data", checkpoint_every=3, lease_seconds=15)
    spec = slow_spec(epochs=24)
    async with running_app(settings) as (app, client):
        job_id, _ = await _signal_mid_job(app, client, spec, 7, signal.SIGKILL)
        done = await wait_for_job(client, job_id, _done)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert _epochs(app.state.db, job_id) == list(range(1, 25))
        history = _history(app.state.db, job_id)

    # Resuming is exact: the history equals one uninterrupted run of the same spec.
    data = load_dataset("xor", tmp_path / "cache")
    trainer = Trainer(build_model(spec))
    trainer.fit(data.X_train, data.y_train)
    assert [h["loss"] for h in history] == [h["loss"] for h in trainer.history]
    assert [h["accuracy"] for h in history] == [h["accuracy"] for h in trainer.history]


async def test_job_fails_once_its_attempts_are_used_up(database_url: str, tmp_path: Path) -> None:
    settings = job_settings(database_url, tmp_path / "data", job_max_attempts=1)
    async with running_app(settings) as (app, client):
        job_id, _ = await _signal_mid_job(app, client, slow_spec(epochs=100), 1, signal.SIGKILL)
        done = await wait_for_job(client, job_id, _done)
    assert done["status"] == "failed"
    assert "exited with status -9" in done["failure_reason"]
    assert "attempt 1 of 1" in done["failure_reason"]


async def test_concurrency_cap(database_url: str, tmp_path: Path) -> None:
    settings = job_settings(database_url, tmp_path / "data", max_concurrent_jobs=1)
    async with running_app(settings) as (app, client):
        first = await _submit(client, slow_spec(epochs=300), "a")
        second = await _submit(client, xor_spec(epochs=2), "b")
        await wait_for_job(client, first, lambda j: j["progress"]["epoch"] >= 2)
        waiting = (await client.get(f"/v1/jobs/{second}")).json()
        assert waiting["status"] == "queued"
        assert list(app.state.runner.process_ids()) == [first]
        await client.post(f"/v1/jobs/{first}/cancel")
        done = await wait_for_job(client, second, _done)
        assert done["status"] == "succeeded"


async def test_timeout_fails_the_job(database_url: str, tmp_path: Path) -> None:
    settings = job_settings(database_url, tmp_path / "data", job_timeout_seconds=2.0)
    async with running_app(settings) as (app, client):
        job_id = await _submit(client, slow_spec(epochs=300))
        pid = await _pid_of(app, job_id)
        done = await wait_for_job(client, job_id, _done)
        assert done["status"] == "failed"
        assert "timed out after 2 seconds" in done["failure_reason"]
        await until(lambda: not app.state.runner.process_ids(), 20, "the runner to let go")
        await until(lambda: not process_alive(pid), 20, "the training process to exit")
        # The only process that could write the job's epochs is gone: no more epochs appear,
        # and it stopped short of the 300 epochs.
        history = _epochs(app.state.db, job_id)
        assert history == list(range(1, len(history) + 1)) and len(history) < 300
        assert (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "failed"
        assert _epochs(app.state.db, job_id) == history


async def test_unresponsive_process_is_terminated_then_killed(
    database_url: str, tmp_path: Path
) -> None:
    """SIGSTOP freezes the process: it cannot cancel cooperatively, and SIGTERM stays
    pending while it is stopped, so only the final SIGKILL ends it."""
    settings = job_settings(database_url, tmp_path / "data", cancel_grace_seconds=0.5)
    async with running_app(settings) as (app, client):
        job_id = await _submit(client, slow_spec(epochs=300))
        pid = await _pid_of(app, job_id)
        await wait_for_job(client, job_id, lambda j: j["progress"]["epoch"] >= 1)
        await _freeze_between_writes(app, job_id, pid)
        with ProcessWatch(pid) as watch:
            cancel = await client.post(f"/v1/jobs/{job_id}/cancel")
            assert cancel.json()["status"] == "cancelling", cancel.text
            done = await wait_for_job(client, job_id, _done, timeout=20)
            assert done["status"] == "cancelled"
            await until(lambda: watch.states[-1:] == ["gone"], 20, "the process to end")
        # Frozen through the grace period; then SIGTERM, which stays pending on the stopped
        # process (it lives on); then it is gone: only SIGKILL ends a stopped process.
        assert watch.states[-3:] == ["stopped", "stopped, SIGTERM pending", "gone"], watch.states


async def test_frozen_process_is_killed_when_its_lease_expires_and_the_job_resumes(
    database_url: str, tmp_path: Path
) -> None:
    """A frozen training process (which may hold the database's write lock) is not left to
    block everyone: once its heartbeat is older than the lease it is killed, and the job
    resumes from its checkpoint in a new process."""
    settings = job_settings(database_url, tmp_path / "data", cancel_grace_seconds=0.5)
    async with running_app(settings) as (app, client):
        job_id, pid = await _signal_mid_job(app, client, slow_spec(epochs=16), 3, signal.SIGSTOP)
        done = await wait_for_job(client, job_id, _done, timeout=60)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert _epochs(app.state.db, job_id) == list(range(1, 17))
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def _abandoned_job(settings: Settings, worker_id: str, attempts: int) -> str:
    """A job as a server killed mid-training leaves it: running, owned by a dead process."""
    async with running_app(settings, start_runner=False) as (app, client):
        job_id = await _submit(client, xor_spec(epochs=3))
        with app.state.db.write_session() as session:
            session.execute(
                update(TrainingJob)
                .where(TrainingJob.id == job_id)
                .values(
                    status=JobStatus.RUNNING,
                    worker_id=worker_id,
                    attempts=attempts,
                    heartbeat_at=utcnow(),
                    started_at=utcnow(),
                )
            )
    return job_id


def _dead_pid() -> int:
    """A pid that certainly belongs to no process (one that has exited and been reaped)."""
    import subprocess

    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


async def test_start_up_recovers_a_job_of_a_dead_server_at_once(
    database_url: str, tmp_path: Path
) -> None:
    # The heartbeat is fresh, but the owner is a dead process on this host: no lease wait.
    settings = job_settings(database_url, tmp_path / "data", lease_seconds=300)
    worker = f"{store.HOSTNAME}:{_dead_pid()}:old:claim"
    job_id = await _abandoned_job(settings, worker, attempts=1)
    async with running_app(settings) as (_app, client):
        done = await wait_for_job(client, job_id, _done, timeout=30)
    assert done["status"] == "succeeded" and done["attempts"] == 2


async def test_start_up_waits_for_the_lease_of_a_remote_worker(
    database_url: str, tmp_path: Path
) -> None:
    settings = job_settings(database_url, tmp_path / "data", lease_seconds=2.0)
    job_id = await _abandoned_job(settings, "elsewhere:123:w:c", attempts=1)
    async with running_app(settings) as (_app, client):
        still = (await client.get(f"/v1/jobs/{job_id}")).json()
        assert still["status"] == "running"  # its heartbeat is fresh: maybe it is alive
        done = await wait_for_job(client, job_id, _done, timeout=30)
    assert done["status"] == "succeeded"


async def test_recovery_fails_a_job_past_its_attempts(database_url: str, tmp_path: Path) -> None:
    settings = job_settings(database_url, tmp_path / "data", job_max_attempts=2)
    worker = f"{store.HOSTNAME}:{_dead_pid()}:old:claim"
    job_id = await _abandoned_job(settings, worker, attempts=2)
    async with running_app(settings) as (_app, client):
        done = await wait_for_job(client, job_id, _done)
    assert done["status"] == "failed"
    assert "stopped responding on attempt 2 of 2" in done["failure_reason"]


async def test_shutdown_requeues_running_jobs_without_using_an_attempt(
    database_url: str, tmp_path: Path
) -> None:
    settings = job_settings(database_url, tmp_path / "data", checkpoint_every=1)
    async with running_app(settings) as (_app, client):
        job_id = await _submit(client, slow_spec(epochs=20))
        await wait_for_job(client, job_id, lambda j: j["progress"]["epoch"] >= 2)
    database = Database(settings)
    try:
        with database.session() as session:
            job = session.get(TrainingJob, job_id)
            assert job is not None
            assert job.status == JobStatus.QUEUED and job.attempts == 0 and job.worker_id is None
    finally:
        database.dispose()


@pytest.mark.both_backends  # claims: BEGIN IMMEDIATE on SQLite, FOR UPDATE SKIP LOCKED on Postgres
def test_run_training_leaves_a_job_it_does_not_own_alone(database_url: str, tmp_path: Path) -> None:
    settings = job_settings(database_url, tmp_path / "data")

    async def submit() -> str:
        async with running_app(settings, start_runner=False) as (_app, client):
            return await _submit(client, xor_spec(epochs=2))

    job_id = asyncio.run(submit())
    database = Database(settings)
    try:
        claimed = store.claim_jobs(database, "runner-a", 1, 5)
        assert [c.job_id for c in claimed] == [job_id]
        assert not store.claim_job(database, job_id, "runner-b:x")  # already running
        assert run_training(job_id, settings, worker_id="someone-else") == JobOutcome.NOT_OWNED
        assert _epochs(database, job_id) == []
        # The rightful owner runs it in this very process.
        assert run_training(job_id, settings, worker_id=claimed[0].worker_id) == "succeeded"
        assert _epochs(database, job_id) == [1, 2]
        # A second call finds it finished and does nothing.
        assert (
            run_training(job_id, settings, worker_id=claimed[0].worker_id) == JobOutcome.NOT_OWNED
        )
        stale = store.recover_abandoned(database, timedelta(seconds=0), 3, exclude=set())
        assert stale == []
    finally:
        database.dispose()


class _DiesAtStart(subprocess.Popen):  # type: ignore[type-arg]
    """The first training process is killed before it can read its job (as by the OOM killer
    or a kill -9 at the worst moment), so writing the job to it breaks the pipe."""

    started = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).started += 1
        if type(self).started == 1:
            self.kill()
            self.wait()


async def test_process_dying_at_start_is_a_crash_not_a_failure(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_DiesAtStart, "started", 0)
    monkeypatch.setattr(processes.subprocess, "Popen", _DiesAtStart)
    settings = job_settings(database_url, tmp_path / "data")
    async with running_app(settings) as (_app, client):
        job_id = await _submit(client, xor_spec(epochs=3))
        done = await wait_for_job(client, job_id, _done, timeout=60)
    assert done["status"] == "succeeded", done["failure_reason"]
    assert done["attempts"] == 2
