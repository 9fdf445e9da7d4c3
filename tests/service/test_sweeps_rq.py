"""Sweeps scaled out: Postgres, Redis, trials on `nn-service worker` processes, a worker killed
with kill -9 mid-sweep. Everything is real (see test_rq_workers.py for the setting)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jobs_helpers import slow_spec
from rq_helpers import WorkerProcess, api, owner_pid, rq_test_settings, worker_pool
from sweeps_helpers import finished, wait_for_sweep
from waiting import process_alive, until

from service.config import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def rq_settings(postgres_schema_url: str, redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    with rq_test_settings(
        postgres_schema_url, redis_url, tmp_path / "data", checkpoint_every=2
    ) as settings:
        yield settings


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    with worker_pool(tmp_path) as start:
        yield start


async def test_killed_worker_mid_sweep_loses_and_repeats_no_trial(
    rq_settings: Settings, workers: Callable[..., WorkerProcess]
) -> None:
    async with api(rq_settings) as (database, client):
        pool = {w.pid: w for w in (workers(rq_settings), workers(rq_settings))}
        response = await client.post(
            "/v1/sweeps",
            json={
                "dataset": "xor",
                "model_name": "rq-sweep",
                # Long enough for two trials to be seen training side by side, loaded or not.
                "spec": slow_spec(epochs=30),
                "search_space": {
                    "optimizer.lr": {"type": "float", "low": 0.01, "high": 0.1, "log": True}
                },
                "objective": {"metric": "accuracy"},
                "n_trials": 4,
                "max_parallel": 2,
                "pruner": "none",
                "seed": 1,
            },
        )
        assert response.status_code == 202, response.text
        sweep_id = response.json()["id"]

        def two_training(sweep: dict[str, Any]) -> bool:
            busy = [t for t in sweep["trials"] if t["job_status"] == "running" and t["epoch"] >= 3]
            return len(busy) == 2

        sweep = await wait_for_sweep(client, sweep_id, two_training, timeout=60)
        busy = [t for t in sweep["trials"] if t["job_status"] == "running"]
        owners = {owner_pid(database, t["job_id"]) for t in busy}
        assert owners == set(pool)  # one trial on each worker
        victim = pool[next(iter(owners))]
        children = victim.children()
        os.kill(victim.pid, signal.SIGKILL)
        victim.process.wait()
        for child in children:
            await until(lambda c=child: not process_alive(c), what="the orphaned trial")

        done = await wait_for_sweep(client, sweep_id, finished, timeout=120)
        assert done["status"] == "succeeded", done
        assert [t["number"] for t in done["trials"]] == [0, 1, 2, 3]
        assert done["counts"]["complete"] == 4
        jobs = (await client.get("/v1/jobs")).json()["items"]
        assert len(jobs) == 4
        assert {j["status"] for j in jobs} == {"succeeded"}
        assert max(j["attempts"] for j in jobs) == 2  # the killed trial resumed elsewhere
        model = (await client.get("/v1/models/rq-sweep")).json()
        assert [v["version"] for v in model["versions"]] == [1]
