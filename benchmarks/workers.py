"""Scale-out: wall time of 8 identical training jobs with 1 `nn-service worker` vs 2.

Postgres (a fresh schema, dropped at the end) and Redis (a queue name of this run's own)
must be running. The API runs in this process (the app over httpx, runner "rq"): it only
queues job ids. Workers are real `nn-service worker` processes, started and registered in
Redis before the jobs are submitted; the clock runs from the first submit to the last job
finishing. Every worker (and so its training process) gets OPENBLAS/OMP/MKL_NUM_THREADS=1,
so the comparison is one core vs two, not BLAS threads fighting over the cores.

    python benchmarks/workers.py [--jobs 8] [--epochs 120] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from rq import Queue, Worker
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.app import create_app
from service.config import Settings
from service.jobs import rq_queue

NN_SERVICE = Path(sys.executable).parent / "nn-service"
POSTGRES_URL = os.environ.get(
    "NNS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("NNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def job_body(epochs: int) -> dict[str, Any]:
    """A CPU-bound job: a 2-64-64-2 MLP on 2,000 spiral points, batch size 8."""
    return {
        "spec": {
            "input_dim": 2,
            "layers": [
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": epochs, "batch_size": 8, "seed": 1},
        },
        "dataset": "spiral",
        "n_samples": 2000,
        "model_name": "bench",
    }


def start_workers(count: int, settings: Settings, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNS_")}
    env.update(
        {
            "NNS_DATABASE_URL": settings.database_url,
            "NNS_RUNNER": "rq",
            "NNS_REDIS_URL": settings.redis_url,
            "NNS_RQ_QUEUE": settings.rq_queue,
            "NNS_DATA_DIR": str(settings.data_dir),
            "NNS_LOG_LEVEL": "WARNING",
            **ONE_THREAD,
        }
    )
    processes = []
    for i in range(count):
        with (log_dir / f"worker-{count}-{i}.log").open("w") as log:
            processes.append(
                subprocess.Popen(
                    [str(NN_SERVICE), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    queue = Queue(settings.rq_queue, connection=rq_queue.redis_connection(settings))
    deadline = time.monotonic() + 60
    while len(Worker.all(queue=queue)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers did not register; see {log_dir}")
        time.sleep(0.1)
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def run_batch(client: httpx.AsyncClient, jobs: int, epochs: int) -> tuple[float, list[float]]:
    """Submit `jobs` jobs; wall seconds until all succeeded, and each job's run time."""
    started = time.monotonic()
    ids = []
    for _ in range(jobs):
        response = await client.post("/v1/jobs", json=job_body(epochs))
        response.raise_for_status()
        ids.append(response.json()["id"])
    pending = set(ids)
    finished: dict[str, dict[str, Any]] = {}
    while pending:
        await asyncio.sleep(0.1)
        for job_id in list(pending):
            job = (await client.get(f"/v1/jobs/{job_id}")).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                if job["status"] != "succeeded":
                    raise RuntimeError(f"job {job_id} {job['status']}: {job['failure_reason']}")
                finished[job_id] = job
                pending.discard(job_id)
    wall = time.monotonic() - started
    runs = [_seconds(job["started_at"], job["finished_at"]) for job in finished.values()]
    return wall, runs


def _seconds(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


async def main_async(args: argparse.Namespace, settings: Settings, log_dir: Path) -> None:
    app = create_app(settings)
    results: dict[int, float] = {}
    async with app.router.lifespan_context(app):
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://bench",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ) as client:
            for count in args.workers:
                processes = start_workers(count, settings, log_dir)
                try:
                    wall, runs = await run_batch(client, args.jobs, args.epochs)
                finally:
                    stop_workers(processes)
                results[count] = wall
                mean = sum(runs) / len(runs)
                print(
                    f"{count} worker(s): {args.jobs} jobs in {wall:6.2f} s wall "
                    f"({args.jobs / wall:.2f} jobs/s; mean run per job {mean:.2f} s)"
                )
    baseline = results[args.workers[0]]
    for count in args.workers[1:]:
        print(
            f"speed-up {count} vs {args.workers[0]} worker(s): {baseline / results[count]:.2f}x "
            f"(ideal {count / args.workers[0]:.0f}x; cores on this machine: {os.cpu_count()})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    schema = f"nns_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        with tempfile.TemporaryDirectory(prefix="nns-bench-") as tmp:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                database_url=url.render_as_string(hide_password=False),
                data_dir=Path(tmp) / "data",
                runner="rq",
                redis_url=REDIS_URL,
                rq_queue=f"nns-bench-{uuid.uuid4().hex[:8]}",
                max_jobs_per_key=args.jobs,
                log_level="WARNING",
            )
            print(
                f"{args.jobs} identical jobs (spiral, 2-64-64-2 MLP, {args.epochs} epochs, "
                "batch 8); Postgres + Redis; 1 BLAS thread per worker"
            )
            asyncio.run(main_async(args, settings, Path(tmp)))
            queue = Queue(settings.rq_queue, connection=rq_queue.redis_connection(settings))
            queue.delete(delete_jobs=True)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
