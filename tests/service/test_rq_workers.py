"""Scale-out: the API queues job ids in Redis (RQ), `nn-service worker` processes run them.

Everything is real: a fresh Postgres schema per test, Redis (the machine's, with a queue
name of the test's own; or a private redis-server when the test crashes or flushes it),
worker processes started as `nn-service worker`, faults made with kill -9, SIGSTOP,
FLUSHALL and pg_terminate_backend. Submission goes through the app over httpx.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from environment import missing
from jobs_helpers import (
    parse_events,
    row_is_free,
    slow_spec,
    wait_for_job,
    xor_spec,
)
from rq import Queue
from rq_helpers import (
    REDIS_SERVER,
    RedisServer,
    WorkerProcess,
    api,
    owner_pid,
    rq_test_settings,
    worker_pool,
)
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from waiting import POLL_SECONDS, ProcessWatch, process_alive, until

from nn_core.datasets.catalog import load_dataset
from nn_core.spec import build_model
from nn_core.training import Trainer
from service.config import Settings
from service.db import Database
from service.jobs import rq_queue
from service.models import MetricPoint, ModelVersion, TrainingJob

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


def _done(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


@pytest.fixture
def rq_settings(postgres_schema_url: str, redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Postgres schema of this test, the shared Redis with a queue of this test's own."""
    with rq_test_settings(
        postgres_schema_url, redis_url, tmp_path / "data", checkpoint_every=3
    ) as settings:
        yield settings


@pytest.fixture
def private_redis(redis_url: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (needs the binary; gated like the redis fixture)."""
    if not os.path.exists(REDIS_SERVER):
        missing("the redis-server program is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `nn-service worker` processes; all are killed at the end of the test."""
    with worker_pool(tmp_path) as start:
        yield start


async def _submit(client: httpx.AsyncClient, spec: dict[str, Any], name: str = "m") -> str:
    response = await client.post(
        "/v1/jobs", json={"spec": spec, "dataset": "xor", "model_name": name}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _epochs(database: Database, job_id: str) -> list[int]:
    with database.session() as session:
        return list(
            session.scalars(
                select(MetricPoint.epoch)
                .where(MetricPoint.job_id == job_id)
                .order_by(MetricPoint.epoch)
            )
        )


def _claim(database: Database, job_id: str) -> tuple[int | None, datetime | None]:
    """(pid of the worker holding the job, the job's last heartbeat), read together."""
    with database.session() as session:
        row = session.execute(
            select(TrainingJob.worker_id, TrainingJob.heartbeat_at).where(TrainingJob.id == job_id)
        ).one()
    worker_id, heartbeat = row
    return (int(worker_id.split(":")[1]) if worker_id else None), heartbeat


def _losses(database: Database, job_id: str) -> list[float]:
    with database.session() as session:
        points = session.scalars(
            select(MetricPoint).where(MetricPoint.job_id == job_id).order_by(MetricPoint.epoch)
        ).all()
        return [p.metrics["loss"] for p in points]


def _versions(database: Database, job_id: str) -> int:
    with database.session() as session:
        count = session.scalar(
            select(func.count()).select_from(ModelVersion).where(ModelVersion.job_id == job_id)
        )
        return int(count or 0)


def _uninterrupted_losses(spec: dict[str, Any], tmp_path: Path) -> list[float]:
    data = load_dataset("xor", tmp_path / "cache")
    trainer = Trainer(build_model(spec))
    trainer.fit(data.X_train, data.y_train)
    return [h["loss"] for h in trainer.history]


# ------------------------------------------------------------------------------ basics


async def test_worker_runs_a_submitted_job_with_progress_and_events(
    rq_settings: Settings, workers: Callable[..., WorkerProcess]
) -> None:
    async with api(rq_settings) as (database, client):
        worker = workers(rq_settings)
        job_id = await _submit(client, slow_spec(epochs=12))
        # The stream comes from the database, wherever the job runs; it ends with the job.
        stream = await client.get(f"/v1/jobs/{job_id}/events")
        events = parse_events(stream.text)
        assert events[0]["event"] == "snapshot"
        assert events[-1]["event"] == "end", worker.log()
        assert events[-1]["data"]["status"] == "succeeded"
        progress = [e["data"]["epoch"] for e in events if e["event"] == "progress"]
        first = events[0]["data"]["progress"]["epoch"]
        assert progress == list(range(first + 1, 13))

        done = (await client.get(f"/v1/jobs/{job_id}")).json()
        assert done["attempts"] == 1
        assert done["model_version"]["version"] == 1
        assert owner_pid(database, job_id) == worker.pid
        assert _epochs(database, job_id) == list(range(1, 13))


async def test_duplicate_messages_run_a_job_once(
    rq_settings: Settings, workers: Callable[..., WorkerProcess]
) -> None:
    async with api(rq_settings) as (database, client):
        job_id = await _submit(client, xor_spec(epochs=4))
        connection = rq_queue.redis_connection(rq_settings)
        queue = rq_queue.training_queue(rq_settings, connection)
        for _ in range(3):
            rq_queue.enqueue(queue, job_id)
        workers(rq_settings)
        workers(rq_settings)
        done = await wait_for_job(client, job_id, _done)
        assert done["status"] == "succeeded" and done["attempts"] == 1
        await until(lambda: queue.count == 0, what="the duplicate messages to be consumed")
        assert _versions(database, job_id) == 1
        connection.close()


async def test_cancel_reaches_a_job_running_on_a_worker(
    rq_settings: Settings, workers: Callable[..., WorkerProcess]
) -> None:
    async with api(rq_settings) as (_database, client):
        worker = workers(rq_settings)
        job_id = await _submit(client, slow_spec(epochs=500))
        await wait_for_job(client, job_id, lambda j: j["progress"]["epoch"] >= 2)
        response = await client.post(f"/v1/jobs/{job_id}/cancel")
        assert response.json()["status"] in ("cancelling", "cancelled")
        done = await wait_for_job(client, job_id, _done, timeout=20)
        assert done["status"] == "cancelled"
        assert done["progress"]["epoch"] < 500
        await until(lambda: not worker.children(), what="the training process to exit")
        assert worker.process.poll() is None  # the worker lives on for the next job


async def test_cancel_kills_a_frozen_training_process_on_a_worker(
    rq_settings: Settings, workers: Callable[..., WorkerProcess]
) -> None:
    async with api(rq_settings) as (_database, client):
        worker = workers(rq_settings)
        job_id = await _submit(client, slow_spec(epochs=500))
        await wait_for_job(client, job_id, lambda j: j["progress"]["epoch"] >= 2)
        [child] = worker.children()
        os.kill(child, signal.SIGSTOP)  # it can no longer see the cancel flag
        with ProcessWatch(child) as watch:
            # (The request may wait for a row lock the frozen process holds, until it is killed.)
            await client.post(f"/v1/jobs/{job_id}/cancel")
            done = await wait_for_job(client, job_id, _done, timeout=30)
            assert done["status"] == "cancelled"
            await until(lambda: watch.states[-1:] == ["gone"], 15, "SIGKILL")
        # Grace (2 s) for a cooperative stop, then SIGTERM (pending on a stopped process, so
        # it lives on), then SIGKILL: the same escalation as the embedded runner.
        # (Its lease may expire first: then a sweep settles the job and the worker, seeing
        # that, escalates the same way.)
        assert watch.states[-3:] == ["stopped", "stopped, SIGTERM pending", "gone"], watch.states
        # The worker takes the next job.
        second = await _submit(client, xor_spec(epochs=3), "next")
        assert (await wait_for_job(client, second, _done))["status"] == "succeeded"


# ------------------------------------------------------------------------------ faults


@pytest.mark.slow
async def test_killed_worker_job_resumes_on_another_worker_from_its_checkpoint(
    rq_settings: Settings, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    spec = slow_spec(epochs=24)
    async with api(rq_settings) as (database, client):
        pool = {w.pid: w for w in (workers(rq_settings), workers(rq_settings))}
        job_id = await _submit(client, spec)
        await wait_for_job(client, job_id, lambda j: j["progress"]["epoch"] >= 7)
        first = owner_pid(database, job_id)
        assert first in pool
        victim = pool[first]
        [child] = victim.children()
        os.kill(victim.pid, signal.SIGKILL)  # no shutdown code runs
        victim.process.wait()
        # The orphaned training process notices its supervisor is gone and exits.
        await until(lambda: not process_alive(child), what="the orphaned training process")

        done = await wait_for_job(client, job_id, _done, timeout=90)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        survivor = next(pid for pid in pool if pid != first)
        assert owner_pid(database, job_id) == survivor
        # Resumed from the checkpoint of epoch 6: no gap, no duplicate, and exactly the
        # history of one uninterrupted run.
        assert _epochs(database, job_id) == list(range(1, 25))
        assert _losses(database, job_id) == _uninterrupted_losses(spec, tmp_path)
        assert _versions(database, job_id) == 1


@pytest.mark.slow
async def test_frozen_worker_loses_its_job_when_the_lease_expires(
    rq_settings: Settings, workers: Callable[..., WorkerProcess]
) -> None:
    async with api(rq_settings) as (database, client):
        pool = {w.pid: w for w in (workers(rq_settings), workers(rq_settings))}
        job_id = await _submit(client, slow_spec(epochs=30))
        await wait_for_job(client, job_id, lambda j: j["progress"]["epoch"] >= 4)
        first = owner_pid(database, job_id)
        assert first in pool
        frozen = pool[first]
        # Worker and training process: a hung machine, frozen between its writes (frozen
        # inside one, it would keep the job's row locked, which no lease can undo).
        for _ in range(100):
            frozen.signal_group(signal.SIGSTOP)
            if row_is_free(database, job_id):
                break
            frozen.signal_group(signal.SIGCONT)
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the training process always held the job's row lock")
        survivor = next(pid for pid in pool if pid != first)
        claims = [_claim(database, job_id)]

        def taken_over() -> bool:
            claims.append(_claim(database, job_id))
            return claims[-1][0] == survivor

        await until(taken_over, timeout=30, what="the takeover")
        # Its pid is alive, so only the lease (6 s here) tells the job is abandoned: the survivor
        # claimed it a lease after the frozen owner's last heartbeat, not before.
        assert process_alive(first)
        last_heartbeat = max(beat for owner, beat in claims if owner == first)
        assert claims[-1][1] - last_heartbeat >= timedelta(seconds=rq_settings.lease_seconds)
        # The frozen worker wakes up: its training process finds it lost the job (the claim
        # is fenced by worker id) and stops; it never writes into the job again.
        frozen.signal_group(signal.SIGCONT)
        done = await wait_for_job(client, job_id, _done, timeout=90)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert _epochs(database, job_id) == list(range(1, 31))
        assert _versions(database, job_id) == 1
        await until(lambda: not frozen.children(), what="the fenced-out process to stop")
        assert frozen.process.poll() is None


@pytest.mark.slow
async def test_flushed_queue_loses_no_job(
    rq_settings: Settings, private_redis: RedisServer, workers: Callable[..., WorkerProcess]
) -> None:
    settings = rq_settings.model_copy(update={"redis_url": private_redis.url})
    async with api(settings) as (_database, client):
        jobs = [await _submit(client, xor_spec(epochs=3), f"m{i}") for i in range(3)]
        connection = redis.Redis.from_url(private_redis.url)
        queue = Queue(settings.rq_queue, connection=connection)
        await until(lambda: queue.count >= 3, what="the messages")
        connection.flushall()  # every message is gone; the jobs are still queued in Postgres
        assert queue.count == 0
        workers(settings)
        for job_id in jobs:
            done = await wait_for_job(client, job_id, _done, timeout=60)
            assert done["status"] == "succeeded", done
        connection.close()


@pytest.mark.slow
async def test_redis_crash_and_restart_loses_no_job(
    rq_settings: Settings,
    private_redis: RedisServer,
    workers: Callable[..., WorkerProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = rq_settings.model_copy(update={"redis_url": private_redis.url})
    async with api(settings) as (_database, client):
        worker = workers(settings)
        first = await _submit(client, slow_spec(epochs=20), "first")
        rest = [await _submit(client, xor_spec(epochs=3), f"m{i}") for i in range(3)]
        await wait_for_job(client, first, lambda j: j["progress"]["epoch"] >= 3)
        caplog.clear()
        private_redis.crash()  # kill -9, no persistence: the queued messages are lost
        # Down until the API has felt it: its sweep fails (and the jobs stay in Postgres).
        await until(lambda: "rq sweep failed" in caplog.text, 30, "the API's sweep to miss Redis")
        private_redis.start()  # same port, empty
        for job_id in [first, *rest]:
            done = await wait_for_job(client, job_id, _done, timeout=90)
            assert done["status"] == "succeeded", (done, worker.log()[-3000:])
            assert done["attempts"] == 1  # the running job never noticed
        assert worker.process.poll() is None


@pytest.mark.slow
async def test_dropped_postgres_connections_are_retried(
    rq_settings: Settings,
    workers: Callable[..., WorkerProcess],
    postgres_url: str,
) -> None:
    # The worker (and its training process) connect under a name of their own, so the test
    # can terminate exactly their backends, again and again, while the job trains.
    app_name = f"nns-worker-{uuid.uuid4().hex[:8]}"
    url = make_url(rq_settings.database_url).update_query_dict({"application_name": app_name})
    worker_settings = rq_settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False)}
    )
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    # Epoch the job was at -> how many of its backends were terminated then: once per
    # epoch, right after the epoch's metrics were written on the connection that is dropped.
    drops: dict[int, int] = {}
    try:
        async with api(rq_settings) as (database, client):
            worker = workers(worker_settings)
            job_id = await _submit(client, slow_spec(epochs=30))

            deadline = time.monotonic() + 90
            while True:
                job = (await client.get(f"/v1/jobs/{job_id}")).json()
                if _done(job):
                    break
                assert time.monotonic() < deadline, (job, worker.log()[-5000:])
                epoch = job["progress"]["epoch"]
                if epoch not in drops:
                    with admin.connect() as connection:
                        drops[epoch] = len(
                            connection.execute(
                                text(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE application_name = :name"
                                ),
                                {"name": app_name},
                            ).all()
                        )
                await asyncio.sleep(POLL_SECONDS)  # until the job reaches its next epoch
            assert job["status"] == "succeeded", (job, worker.log()[-3000:])
            assert job["attempts"] == 1
            assert _epochs(database, job_id) == list(range(1, 31))
            # The drops really happened, many times: at 10 epochs or more of the 30.
            assert sum(1 for n in drops.values() if n) >= 10, drops
    finally:
        admin.dispose()
