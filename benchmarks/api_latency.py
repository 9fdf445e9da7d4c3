"""API latency while two training jobs run vs idle, on a real `nn-service serve` process.

Starts a server (embedded runner, SQLite, a fresh data directory), measures GET /healthz and
GET /v1/jobs sequentially over one keep-alive connection while nothing runs (the baseline),
then submits two training jobs (Fashion-MNIST 784-256-128-10 when the dataset is installed,
else spiral with batch size 1: CPU-bound either way) and measures the same requests while
both jobs train. Prints p50/p99/max per phase and the ratio to the idle baseline.

    python benchmarks/api_latency.py [--requests 400] [--epochs 4]

Training runs in subprocesses (at a lower CPU priority, BLAS threads split between the
concurrent jobs), so the event loop is never busy with NumPy; what remains is contention
for the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_server import start_server, stop


def fashion_available(data_dir: Path) -> bool:
    from service.config import Settings
    from service.datasets_store import catalog_info

    settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
    return catalog_info(settings, "fashion-mnist").available


def job_body(fashion: bool, epochs: int, name: str) -> dict[str, Any]:
    if fashion:
        spec = {
            "input_dim": 784,
            "preprocess": [{"type": "minmax"}],
            "layers": [
                {"type": "dense", "units": 256, "activation": "relu"},
                {"type": "dense", "units": 128, "activation": "relu"},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.001},
            "training": {"epochs": epochs, "batch_size": 64},
        }
        return {"spec": spec, "dataset": "fashion-mnist", "model_name": name}
    spec = {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": 32, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": epochs * 50, "batch_size": 1},
    }
    return {"spec": spec, "dataset": "spiral", "model_name": name}


def measure(client: httpx.Client, path: str, n: int) -> list[float]:
    """Latencies in milliseconds of n sequential GETs."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def jobs_state(client: httpx.Client, ids: list[str]) -> list[dict[str, Any]]:
    return [client.get(f"/v1/jobs/{job_id}").json() for job_id in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per route and phase")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per training job")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="train on spiral even if Fashion-MNIST is installed",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nns-bench-") as tmp:
        workdir = Path(tmp)
        fashion = not args.synthetic and fashion_available(workdir / "data")
        process, base = start_server(workdir)
        try:
            key = (workdir / "data" / "admin-key").read_text().strip()
            client = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
            )
            routes = ["/healthz", "/v1/jobs"]
            for route in routes:
                measure(client, route, 50)  # warm-up
            idle = {route: measure(client, route, args.requests) for route in routes}

            ids = []
            for i in range(2):
                response = client.post("/v1/jobs", json=job_body(fashion, args.epochs, f"b{i}"))
                response.raise_for_status()
                ids.append(response.json()["id"])
            # Wait until both have loaded their data and finished an epoch: truly training.
            while not all(j["progress"]["epoch"] >= 1 for j in jobs_state(client, ids)):
                if any(j["status"] in ("failed", "cancelled") for j in jobs_state(client, ids)):
                    raise SystemExit(f"a job ended early: {jobs_state(client, ids)}")
                time.sleep(0.2)
            before = [j["progress"]["epoch"] for j in jobs_state(client, ids)]
            started = time.perf_counter()
            busy = {route: measure(client, route, args.requests) for route in routes}
            elapsed = time.perf_counter() - started
            after = jobs_state(client, ids)
            still = all(j["status"] == "running" for j in after)
            for job_id in ids:
                client.post(f"/v1/jobs/{job_id}/cancel")
        finally:
            stop(process)

    dataset = "fashion-mnist (60000x784, 784-256-128-10)" if fashion else "spiral, batch 1"
    print(f"API latency, sequential requests over one connection, {os.cpu_count()} CPUs")
    print(f"training: 2 jobs on {dataset}; {args.requests} requests per route and phase")
    print(f"{'route':<10} {'phase':<16} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50 x':>6}")
    for route in routes:
        base_p50 = summary(idle[route])["p50"]
        for phase, values in (("idle", idle[route]), ("2 jobs training", busy[route])):
            s = summary(values)
            print(
                f"{route:<10} {phase:<16} {s['p50']:8.2f} {s['p99']:8.2f} {s['max']:8.2f} "
                f"{s['p50'] / base_p50:6.2f}"
            )
    progressed = [j["progress"]["epoch"] - b for j, b in zip(after, before, strict=True)]
    print(
        f"during the {elapsed:.1f} s of busy measurements the jobs advanced {progressed} epochs"
        f"{'' if still else ' (a job finished before the end: rerun with more --epochs)'}"
    )


if __name__ == "__main__":
    main()
