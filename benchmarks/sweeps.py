"""Hyperparameter sweeps: what pruning saves, and how trials scale over RQ workers.

1. Pruning (a real `nn-service serve`, embedded runner, SQLite, a fresh data directory): the
   same sweep is run with pruner `none` and with each pruner of --pruners (default: median
   and successive_halving), on a fixed Fashion-MNIST subset (--fashion-rows rows of the
   training IDX files in /usr/share/datasets/fashion-mnist, uploaded as an NPZ dataset) and
   on the built-in 2-D `spiral` toy set. Every sweep of a dataset has the same seed, the same
   initial trials (known starting points) and the random sampler, whose trial N draws from
   seed + N only: each sweep proposes exactly the same configurations, and the pruner is the
   one difference. Printed per dataset and pruner: the best objective (val_accuracy, in
   points), the total epochs trained by all trials (each trial job's `epoch`), the wall
   time and the trial counts. Target: best within 0.5 points of pruner `none` with at least
   40% fewer epochs. With several --seeds, the medians over the seeds decide.

2. Scale-out (`nn-service serve` with NNS_RUNNER=rq on a fresh Postgres database and
   `nn-service worker` processes on a Redis queue of this run's own): a sweep of --rq-trials
   equally costly trials (pruner none; only the learning rate varies) with 1 worker, then
   with 2, --rounds times alternating; trials per minute from the submit to the sweep's end.
   Target: 2 workers >= 1.7x the trials per minute of 1. Every worker and training process
   has one BLAS thread, so this is one core against two; the CPU count and load average are
   printed too, since on a machine whose cores are shared the ratio cannot reach 2.

    python benchmarks/sweeps.py [--trials 16] [--epochs 10] [--toy-epochs 40]
        [--fashion-rows 3000] [--pruners median successive_halving] [--seeds 0 1 2]
        [--rq-trials 8] [--rq-epochs 100] [--rounds 3] [--skip-pruning] [--skip-rq]

Needs Postgres (NNS_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/
test; a database nns_bench_sweeps_<random> is created next to it and dropped at the end) and
Redis (NNS_TEST_REDIS_URL, default redis://127.0.0.1:6379/0; only this run's queue, its RQ
registries and jobs are removed at the end) for part 2. Everything it starts (servers,
workers, temporary directories) is cleaned up, also on Ctrl-C. At the defaults the whole run
takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_server import NN_SERVICE, start_server, stop

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
POSTGRES_URL = os.environ.get(
    "NNS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("NNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TERMINAL = {"succeeded", "failed", "cancelled"}
TARGET_POINTS = 0.5  # best objective at most this many points below pruner "none"
TARGET_SAVING = 0.40  # at least this fraction fewer epochs
TARGET_SPEEDUP = 1.7  # 2 workers vs 1


# ----------------------------------------------------------------------------- the sweeps


@dataclass(frozen=True)
class Case:
    """One dataset's sweep: everything but the pruner, seed and model name."""

    label: str
    dataset: str
    spec: dict[str, Any]
    search_space: dict[str, Any]
    initial_trials: list[dict[str, Any]]
    extra: dict[str, Any]


def fashion_case(dataset: str, epochs: int) -> Case:
    return Case(
        label="fashion-mnist",
        dataset=dataset,
        spec={
            "input_dim": 784,
            "layers": [
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.003},
            "training": {"epochs": epochs, "batch_size": 64, "validation_split": 0.2, "seed": 1},
        },
        search_space={
            "optimizer.lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
            "layers[0].units": {"type": "int", "low": 8, "high": 128, "log": True},
            "layers[:-1].activation": {
                "type": "categorical",
                "choices": ["relu", "tanh", "sigmoid"],
            },
        },
        initial_trials=[
            {"optimizer.lr": 0.003, "layers[0].units": 64, "layers[:-1].activation": "relu"},
            {"optimizer.lr": 0.03, "layers[0].units": 16, "layers[:-1].activation": "tanh"},
        ],
        extra={},
    )


def toy_case(epochs: int, n_samples: int) -> Case:
    return Case(
        label=f"spiral (n={n_samples})",
        dataset="spiral",
        spec={
            "input_dim": 2,
            "layers": [
                {"type": "dense", "units": 16, "activation": "tanh"},
                {"type": "dense", "units": 16, "activation": "tanh"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": epochs, "batch_size": 16, "validation_split": 0.2, "seed": 1},
        },
        search_space={
            "optimizer.lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
            "layers[:-1].units": {"type": "int", "low": 2, "high": 32, "log": True},
            "layers[:-1].activation": {
                "type": "categorical",
                "choices": ["relu", "tanh", "sigmoid"],
            },
        },
        initial_trials=[
            {"optimizer.lr": 0.01, "layers[:-1].units": 16, "layers[:-1].activation": "tanh"},
            {"optimizer.lr": 0.001, "layers[:-1].units": 8, "layers[:-1].activation": "relu"},
        ],
        extra={"n_samples": n_samples},
    )


def sweep_body(
    case: Case, *, pruner: str, seed: int, n_trials: int, max_parallel: int, model_name: str
) -> dict[str, Any]:
    return {
        "dataset": case.dataset,
        "model_name": model_name,
        "spec": case.spec,
        "search_space": case.search_space,
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "n_trials": n_trials,
        "max_parallel": max_parallel,
        "sampler": "random",  # trial N's parameters depend on seed + N only: same in every sweep
        "pruner": pruner,
        "seed": seed,
        "initial_trials": case.initial_trials,
        **case.extra,
    }


@dataclass(frozen=True)
class Outcome:
    status: str
    best: float | None  # the objective in points (val_accuracy x 100)
    epochs: int  # trained by all trials together
    seconds: float  # from the submit to the sweep's end
    counts: dict[str, int]
    n_trials: int
    trial_run: float  # median seconds of a trial job from its start to its end
    trial_total: float  # seconds of all trial jobs from their start to their end, summed
    params: dict[int, dict[str, Any]]  # each trial's parameters, by number
    registered: bool  # the best trial became a model version


def run_sweep(client: httpx.Client, body: dict[str, Any], timeout: float) -> Outcome:
    """Submit a sweep, wait for its end; its best objective and the epochs its trials trained."""
    started = time.monotonic()
    response = client.post("/v1/sweeps", json=body)
    if response.status_code != 202:
        raise SystemExit(f"POST /v1/sweeps answered {response.status_code}: {response.text}")
    location = response.headers["location"]
    deadline = started + timeout
    while True:
        sweep = client.get(location).json()
        if sweep["status"] in TERMINAL:
            break
        failed = [t for t in sweep["trials"] if t["state"] == "failed"]
        if failed:  # a broken setup: stop at once rather than retrying every trial
            client.post(f"{location}/cancel")
            raise SystemExit(
                f"sweep {sweep['id']}: trial {failed[0]['number']} failed: "
                f"{failed[0]['failure_reason']} (see the server's log)"
            )
        if time.monotonic() > deadline:
            client.post(f"{location}/cancel")
            raise SystemExit(f"sweep {sweep['id']} did not end within {timeout:.0f} s: {sweep}")
        time.sleep(0.25)
    seconds = time.monotonic() - started
    best = sweep["best_trial"]["value"] * 100 if sweep["best_trial"] else None
    epochs = sum(int(trial["epoch"]) for trial in sweep["trials"])
    if sweep["status"] != "succeeded":
        print(f"  ! sweep {sweep['id']} {sweep['status']}: {sweep['failure_reason']}")
    failed = [t for t in sweep["trials"] if t["state"] in ("failed", "cancelled")]
    for trial in failed[:3]:
        print(f"  ! trial {trial['number']} {trial['state']}: {trial['failure_reason']}")
    run, total = trial_times(client, sweep["id"])
    return Outcome(
        sweep["status"],
        best,
        epochs,
        seconds,
        dict(sweep["counts"]),
        len(sweep["trials"]),
        run,
        total,
        {t["number"]: t["params"] for t in sweep["trials"]},
        bool(sweep["best_trial"] and sweep["best_trial"]["model_version"]),
    )


def trial_times(client: httpx.Client, sweep_id: str) -> tuple[float, float]:
    """Median and summed run time (started -> finished) of the sweep's trial jobs."""
    jobs = client.get("/v1/jobs", params={"sweep_id": sweep_id, "limit": 200}).json()["items"]
    runs = [
        _between(job["started_at"], job["finished_at"])
        for job in jobs
        if job["started_at"] and job["finished_at"]
    ]
    return (statistics.median(runs) if runs else float("nan")), sum(runs)


def _between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


# ----------------------------------------------------------------------------- data


def fashion_subset(rows: int, seed: int = 0) -> bytes | None:
    """`rows` fixed rows of the Fashion-MNIST training files as an NPZ (X in [0, 1], y 0-9)."""
    images_path = FASHION_DIR / "train-images-idx3-ubyte.gz"
    labels_path = FASHION_DIR / "train-labels-idx1-ubyte.gz"
    if not images_path.exists() or not labels_path.exists():
        return None
    images = np.frombuffer(gzip.decompress(images_path.read_bytes()), np.uint8, offset=16)
    labels = np.frombuffer(gzip.decompress(labels_path.read_bytes()), np.uint8, offset=8)
    images = images.reshape(len(labels), 784)
    pick = np.random.default_rng(seed).choice(len(labels), size=rows, replace=False)
    buffer = io.BytesIO()
    np.savez(buffer, X=(images[pick] / 255.0).astype(np.float32), y=labels[pick].astype(np.int64))
    return buffer.getvalue()


def upload(client: httpx.Client, name: str, npz: bytes) -> str:
    response = client.post(
        "/v1/datasets",
        files={"file": (f"{name}.npz", npz, "application/octet-stream")},
        data={"name": name},
    )
    if response.status_code not in (200, 201):
        raise SystemExit(f"upload answered {response.status_code}: {response.text}")
    info = response.json()
    print(f"uploaded {name}: {info.get('n_train')} train / {info.get('n_test')} test rows")
    return name


def print_log_tail(paths: Iterable[Path], lines: int = 6) -> None:
    """The last lines of each log that holds a traceback (the temporary directory goes away)."""
    for path in sorted(paths):
        text = path.read_text(errors="replace")
        if "Traceback" in text:
            tail = "\n    ".join(text.strip().splitlines()[-lines:])
            print(f"  {path.name}:\n    {tail}")


# ----------------------------------------------------------------------------- part 1


def pruning(args: argparse.Namespace, root: Path) -> list[bool]:
    workdir = root / "embedded"
    workdir.mkdir()
    process, base = start_server(workdir, RUNNER="embedded")
    try:
        key = (workdir / "data" / "admin-key").read_text().strip()
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            cases = []
            npz = fashion_subset(args.fashion_rows)
            if npz is None:
                print(f"Fashion-MNIST is not in {FASHION_DIR}; its sweeps are skipped")
            else:
                name = upload(client, "fashion-subset", npz)
                cases.append(fashion_case(name, args.epochs))
            cases.append(toy_case(args.toy_epochs, args.toy_samples))
            return [compare(client, case, args) for case in cases]
    except SystemExit:
        print_log_tail(workdir.glob("*.log"))
        raise
    finally:
        stop(process)


def compare(client: httpx.Client, case: Case, args: argparse.Namespace) -> bool:
    pruners = ["none", *args.pruners]
    print(
        f"\n{case.label}: {args.trials} trials (2 initial), {case.spec['training']['epochs']} "
        f"epochs each, max_parallel {args.max_parallel}, random sampler, seeds {args.seeds}"
    )
    print(
        f"  {'seed':>4} {'pruner':<20} {'best (pts)':>10} {'epochs':>7} {'wall s':>7} "
        f"{'trial s':>8} {'busy':>5}  complete/pruned/failed"
    )
    results: dict[str, list[Outcome]] = {p: [] for p in pruners}
    for seed in args.seeds:
        for pruner in pruners:
            body = sweep_body(
                case,
                pruner=pruner,
                seed=seed,
                n_trials=args.trials,
                max_parallel=args.max_parallel,
                model_name=f"bench-{uuid.uuid4().hex[:8]}",
            )
            outcome = run_sweep(client, body, args.sweep_timeout)
            results[pruner].append(outcome)
            if outcome.params != results["none"][-1].params:
                print(f"  ! seed {seed}: the {pruner} sweep proposed other parameters than none")
            if outcome.status == "succeeded" and not outcome.registered:
                print(f"  ! seed {seed}: the {pruner} sweep succeeded without a model version")
            best = f"{outcome.best:.2f}" if outcome.best is not None else "-"
            counts = outcome.counts
            print(
                f"  {seed:>4} {pruner:<20} {best:>10} {outcome.epochs:>7} "
                f"{outcome.seconds:>7.1f} {outcome.trial_run:>8.2f} "
                f"{outcome.trial_total / (outcome.seconds * args.max_parallel):>5.0%}  "
                f"{counts.get('complete', 0)}/"
                f"{counts.get('pruned', 0)}/{counts.get('failed', 0) + counts.get('cancelled', 0)}"
            )
    met_any = False
    base = results["none"]
    for pruner in args.pruners:
        gaps = [
            (b.best - p.best) if b.best is not None and p.best is not None else float("inf")
            for b, p in zip(base, results[pruner], strict=True)
        ]
        savings = [
            1 - p.epochs / b.epochs if b.epochs else 0.0
            for b, p in zip(base, results[pruner], strict=True)
        ]
        speed = [b.seconds / p.seconds for b, p in zip(base, results[pruner], strict=True)]
        gap, saving = statistics.median(gaps), statistics.median(savings)
        met = gap <= TARGET_POINTS and saving >= TARGET_SAVING
        met_any |= met
        print(
            f"  {pruner} vs none (median over {len(gaps)} seed(s)): best {gap:+.2f} points "
            f"below (target <= {TARGET_POINTS}), {saving:.0%} fewer epochs (target >= "
            f"{TARGET_SAVING:.0%}), wall time x{statistics.median(speed):.2f} faster: "
            f"{'target met' if met else 'target NOT met'}"
        )
    return met_any


# ----------------------------------------------------------------------------- part 2


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database next to POSTGRES_URL's, dropped (forcibly) at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    name = f"nns_bench_sweeps_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def clean_redis(queue_name: str) -> int:
    """Remove this run's queue, its registries and the RQ jobs they name; how many keys."""
    import redis
    from rq import Queue
    from rq.registry import (
        CanceledJobRegistry,
        DeferredJobRegistry,
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    connection = redis.Redis.from_url(REDIS_URL)
    try:
        queue = Queue(queue_name, connection=connection)
        job_ids = set(queue.get_job_ids())
        for registry in (
            StartedJobRegistry,
            FinishedJobRegistry,
            FailedJobRegistry,
            DeferredJobRegistry,
            ScheduledJobRegistry,
            CanceledJobRegistry,
        ):
            job_ids.update(registry(queue_name, connection=connection).get_job_ids())
        keys = [f"rq:job:{job_id}".encode() for job_id in job_ids]
        keys += [f"rq:results:{job_id}".encode() for job_id in job_ids]
        keys += list(connection.scan_iter(match=f"*{queue_name}*"))
        removed = int(connection.delete(*keys)) if keys else 0
        return removed
    finally:
        connection.close()


def unreachable() -> str | None:
    """Why Postgres or Redis cannot be used (None when both answer)."""
    import redis
    from sqlalchemy import create_engine, text

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} does not answer ({exc})"
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error: the part is skipped, with the reason
        return f"Postgres at {POSTGRES_URL} does not answer ({type(exc).__name__})"
    finally:
        engine.dispose()
    return None


def start_workers(
    count: int, env: dict[str, str], log_dir: Path, queue_name: str
) -> list[subprocess.Popen[bytes]]:
    import redis
    from rq import Queue, Worker

    processes = []
    for i in range(count):
        with (log_dir / f"worker-{count}-{i}-{uuid.uuid4().hex[:4]}.log").open("w") as log:
            processes.append(
                subprocess.Popen(
                    [str(NN_SERVICE), "worker"],
                    env=env,
                    cwd=log_dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    connection = redis.Redis.from_url(REDIS_URL)
    queue = Queue(queue_name, connection=connection)
    try:
        deadline = time.monotonic() + 60
        while len(Worker.all(queue=queue)) < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                stop_workers(processes)
                raise SystemExit(f"workers did not register; see {log_dir}")
            time.sleep(0.1)
    finally:
        connection.close()
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the worker and its training child
            process.wait()


def rq_case(epochs: int) -> Case:
    """Trials of equal cost: a 2-64-64-2 MLP on 2,000 spiral points; only the rate varies."""
    return Case(
        label="spiral (n=2000)",
        dataset="spiral",
        spec={
            "input_dim": 2,
            "layers": [
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": epochs, "batch_size": 8, "validation_split": 0.2, "seed": 1},
        },
        search_space={"optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.05, "log": True}},
        initial_trials=[],
        extra={"n_samples": 2000},
    )


def scale_out(args: argparse.Namespace, root: Path) -> bool:
    workdir = root / "rq"
    workdir.mkdir()
    queue_name = f"nns-bench-sweeps-{uuid.uuid4().hex[:10]}"
    settings = {"RUNNER": "rq", "REDIS_URL": REDIS_URL, "RQ_QUEUE": queue_name}
    case = rq_case(args.rq_epochs)
    try:
        with postgres_database() as database_url:
            settings["DATABASE_URL"] = database_url
            process, base = start_server(workdir, **settings)
            worker_env = {k: v for k, v in os.environ.items() if not k.startswith("NNS_")} | {
                f"NNS_{k}": v for k, v in settings.items()
            }
            worker_env.update(
                NNS_DATA_DIR=str(workdir / "data"), NNS_LOG_LEVEL="WARNING", **ONE_THREAD
            )
            worker_env.pop("DATABASE_URL", None)
            try:
                key = (workdir / "data" / "admin-key").read_text().strip()
                with httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
                ) as client:
                    return measure_scale_out(client, case, args, worker_env, workdir, queue_name)
            except SystemExit:
                print_log_tail(workdir.glob("*.log"))
                raise
            finally:
                stop(process)
    finally:
        removed = clean_redis(queue_name)
        print(f"  (removed {removed} Redis keys of queue {queue_name})")


def measure_scale_out(
    client: httpx.Client,
    case: Case,
    args: argparse.Namespace,
    env: dict[str, str],
    log_dir: Path,
    queue_name: str,
) -> bool:
    print(
        f"\nscale-out: {args.rq_trials} trials of {args.rq_epochs} epochs on {case.label}, "
        f"pruner none, max_parallel {min(args.rq_trials, 4)}, Postgres + Redis, 1 BLAS thread each"
    )
    rates: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(args.rounds):
        for count in (1, 2):
            processes = start_workers(count, env, log_dir, queue_name)
            try:
                body = sweep_body(
                    case,
                    pruner="none",
                    seed=round_,
                    n_trials=args.rq_trials,
                    max_parallel=min(args.rq_trials, 4),  # the default per-key job limit
                    model_name=f"bench-rq-{uuid.uuid4().hex[:8]}",
                )
                load_before = os.getloadavg()[0]
                outcome = run_sweep(client, body, args.sweep_timeout)
            finally:
                stop_workers(processes)
            rate = outcome.n_trials / outcome.seconds * 60
            rates[count].append(rate)
            print(
                f"  round {round_ + 1}, {count} worker(s): {outcome.n_trials} trials in "
                f"{outcome.seconds:.1f} s = {rate:.1f} trials/min ({outcome.status}, "
                f"{outcome.epochs} epochs, trial job {outcome.trial_run:.1f} s; "
                f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
            )
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    ratio = two / one
    met = ratio >= TARGET_SPEEDUP
    print(
        f"  median trials/min: 1 worker {one:.1f}, 2 workers {two:.1f}: x{ratio:.2f} "
        f"(target >= {TARGET_SPEEDUP}): {'target met' if met else 'target NOT met'}"
    )
    print(
        f"  CPUs available: {len(os.sched_getaffinity(0))} (os.cpu_count {os.cpu_count()}); "
        f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return met


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="trials per pruning sweep")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per Fashion-MNIST trial")
    parser.add_argument("--toy-epochs", type=int, default=40, help="epochs per spiral trial")
    parser.add_argument("--toy-samples", type=int, default=1000, help="spiral points")
    parser.add_argument("--fashion-rows", type=int, default=3000, help="Fashion-MNIST rows")
    parser.add_argument("--max-parallel", type=int, default=2, help="of the pruning sweeps")
    parser.add_argument(
        "--pruners",
        nargs="+",
        default=["median", "successive_halving"],
        choices=["median", "successive_halving", "hyperband"],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rq-trials", type=int, default=8, help="trials per scale-out sweep")
    parser.add_argument("--rq-epochs", type=int, default=100, help="epochs per scale-out trial")
    parser.add_argument("--rounds", type=int, default=3, help="scale-out rounds (1, 2 workers)")
    parser.add_argument("--sweep-timeout", type=float, default=600.0, help="seconds per sweep")
    parser.add_argument("--skip-pruning", action="store_true")
    parser.add_argument("--skip-rq", action="store_true")
    args = parser.parse_args()

    os.environ.update(ONE_THREAD)  # the embedded server's training children too
    print(
        f"CPUs {len(os.sched_getaffinity(0))}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, python {sys.version.split()[0]}"
    )
    started = time.monotonic()
    # SIGTERM ends like Ctrl-C, so the finally blocks stop what was started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="nns-bench-sweeps-") as tmp:
        root = Path(tmp)
        if not args.skip_pruning:
            pruning(args, root)
        if not args.skip_rq:
            missing = unreachable()
            if missing:
                print(f"\nscale-out skipped: {missing}")
            else:
                scale_out(args, root)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
