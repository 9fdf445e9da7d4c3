"""Prediction throughput under load while two jobs train, against a trivial FastAPI ceiling.

Starts `nn-service serve` (embedded runner, SQLite, a fresh data directory, no prediction
rate limit) on 127.0.0.1, trains a small XOR classifier through the API, then starts two
CPU-bound training jobs. While both train, concurrent keep-alive clients drive
POST /v1/models/xor:predict for a fixed time; then the same clients drive a trivial FastAPI
endpoint (same route shape and body, a constant answer, served by uvicorn in its own
process on this machine) for the same time: the framework ceiling. The two phases alternate
(--rounds) so both see the same contention. Prints requests/s, p50/p99 latency and errors of
each, and the ratio. Target: zero errors, predict throughput >= 80% of the ceiling. Each
server's CPU time per request is printed too (Linux): the same comparison without the
scheduler's share in it.

    python benchmarks/load.py [--concurrency 8] [--seconds 10] [--rounds 2] [--workers N]

With --workers N a second server runs `nn-service serve --workers N` (its own data directory
and trained model); the phases then alternate 1 worker, N workers, ceiling, and the scaling
(N workers' requests/s over one worker's, and each one's share of the ceiling) is printed.

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams (one connection per
concurrent client): it costs far less CPU per request than a full HTTP library, so on a
small machine the server, not the client, is what gets measured. Everything (client,
servers, training) shares the machine's cores; the load average is printed alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from bench_server import free_port, start_server, stop, wait_ready
from fastapi import FastAPI
from pydantic import BaseModel

PREDICT_BODY = {"instances": [[0.0, 1.0], [1.0, 1.0]]}


# ----------------------------------------------------------------------------- the ceiling


class CeilingBody(BaseModel):
    """The ceiling's request body: the same shape as :predict's, validated the same way."""

    instances: list[Any]


def serve_ceiling(port: int) -> None:
    """A trivial FastAPI app with the same route shape, body model and response size."""
    app = FastAPI()
    answer = {
        "predictions": [{"label": "yes", "probabilities": {"no": 0.01, "yes": 0.99}}] * 2,
        "model": "xor",
        "version": 1,
    }

    @app.post("/v1/models/{name}:predict")
    def predict(name: str, body: CeilingBody) -> dict[str, Any]:
        return answer

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", workers=1)


# ----------------------------------------------------------------------------- the client


@dataclass
class Results:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


def _request_bytes(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    body = json.dumps(PREDICT_BODY).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        body += await reader.readexactly(size + 2)
    await reader.readuntil(b"\r\n")
    return status, body


async def _one_client(
    host: str, port: int, request: bytes, deadline: float, results: Results
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                writer.write(request)
                status, body = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                results.error(f"{type(exc).__name__}: {exc}")
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            results.latencies_ms.append((time.perf_counter() - started) * 1000)
            if status != 200:
                results.error(f"HTTP {status}: {body[:200]!r}")
    finally:
        writer.close()


async def drive(
    base: str, path: str, headers: dict[str, str], concurrency: int, seconds: float
) -> tuple[Results, float]:
    host, port = base.removeprefix("http://").split(":")
    request = _request_bytes(host, int(port), path, headers)
    results = Results()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_one_client(host, int(port), request, deadline, results) for _ in range(concurrency))
    )
    return results, time.perf_counter() - started


# ----------------------------------------------------------------------------- processes


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of a process, all its threads, from /proc (Linux); 0 for
    None (a phase not measured)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_service(workdir: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    return start_server(
        workdir,
        workers=workers,
        predict_rate_limit="0",
        max_concurrent_jobs="2",
        max_epochs="100000",  # the busy jobs must outlast the measurements
    )


def start_ceiling(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = workdir / "ceiling.log"
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-ceiling", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(process, f"{base}/healthz", log)
    return process, base


# ----------------------------------------------------------------------------- training


def xor_job(epochs: int, batch_size: int, name: str) -> dict[str, Any]:
    spec = {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": 16, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.01 if batch_size == 1 else 0.05},
        "training": {"epochs": epochs, "batch_size": batch_size, "seed": 0},
    }
    return {"spec": spec, "dataset": "xor", "model_name": name}


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/v1/jobs", json=body)
    if response.status_code != 202:
        raise SystemExit(f"job refused: {response.text}")
    job_id: str = response.json()["id"]
    return job_id


def wait_job(client: httpx.Client, job_id: str, until: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        if job["status"] in ("failed", "cancelled") or time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} did not get there: {job}")
        time.sleep(0.2)


# ----------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, results: Results, seconds: float) -> tuple[str, float]:
    lat = results.latencies_ms or [float("nan")]
    rps = len(results.latencies_ms) / seconds
    line = (
        f"{name:<32} {rps:9.1f} {statistics.median(lat):8.2f} {percentile(lat, 0.99):8.2f} "
        f"{len(results.latencies_ms):9d} {results.errors:7d}"
    )
    return line, rps


def merged(runs: list[tuple[Results, float]]) -> tuple[Results, float]:
    out = Results()
    for results, _ in runs:
        out.latencies_ms += results.latencies_ms
        out.errors += results.errors
        out.error_samples += results.error_samples
    return out, sum(seconds for _, seconds in runs)


def prepare(workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """A server with `workers` processes and a trained `xor` model; returns it, its base URL
    and the admin key's header."""
    workdir.mkdir()
    service, base = start_service(workdir, workers)
    key = (workdir / "data" / "admin-key").read_text().strip()
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        trained = submit(client, xor_job(200, 8, "xor"))
        wait_job(client, trained, lambda j: j["status"] == "succeeded")
        client.post("/v1/models/xor:predict", json=PREDICT_BODY).raise_for_status()
    return service, base, auth


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the phases")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="also measure a second server started with `serve --workers N` (N > 1), "
        "alternating with the 1-worker server, and print the scaling",
    )
    parser.add_argument("--serve-ceiling", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        serve_ceiling(args.serve_ceiling)
        return

    load_before = os.getloadavg()
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="nns-load-") as tmp:
        workdir = Path(tmp)
        try:
            service, base, auth = prepare(workdir / "one", 1)
            servers.append(service)
            # (name, base URL, headers, the pid whose CPU time is the server's or None).
            phases = [("nn-service :predict", base, auth, service.pid)]
            if args.workers > 1:
                many, many_base, many_auth = prepare(workdir / "many", args.workers)
                servers.append(many)
                phases[0] = ("nn-service :predict, 1 worker", base, auth, service.pid)
                # Its CPU time is spread over worker processes: not measured.
                name = f"nn-service :predict, {args.workers} workers"
                phases.append((name, many_base, many_auth, None))
            ceiling, ceiling_base = start_ceiling(workdir)
            servers.append(ceiling)
            phases.append(("trivial FastAPI (ceiling)", ceiling_base, {}, ceiling.pid))

            # Two CPU-bound jobs (batch size 1, many epochs) on the first server, truly training
            # before we start: every phase shares the machine with them.
            client = httpx.Client(base_url=base, headers=auth, timeout=30)
            busy = [submit(client, xor_job(100_000, 1, f"busy{i}")) for i in range(2)]
            for job_id in busy:
                wait_job(client, job_id, lambda j: j["progress"]["epoch"] >= 1)
            epochs_before = [client.get(f"/v1/jobs/{j}").json()["progress"]["epoch"] for j in busy]

            path = "/v1/models/xor:predict"
            warm = min(2.0, args.seconds)
            for _, url, headers, _ in phases:
                asyncio.run(drive(url, path, headers, args.concurrency, warm))
            runs: list[list[tuple[Results, float]]] = [[] for _ in phases]
            cpu = [0.0 for _ in phases]  # server CPU seconds spent during each phase's runs
            for _ in range(args.rounds):
                for i, (_, url, headers, pid) in enumerate(phases):
                    before = cpu_seconds(pid)
                    runs[i].append(
                        asyncio.run(drive(url, path, headers, args.concurrency, args.seconds))
                    )
                    cpu[i] += cpu_seconds(pid) - before
            jobs_after = [client.get(f"/v1/jobs/{j}").json() for j in busy]
            for job_id in busy:
                client.post(f"/v1/jobs/{job_id}/cancel")
        finally:
            for process in reversed(servers):
                stop(process)
    load_after = os.getloadavg()

    print(
        f"Load: {args.concurrency} keep-alive connections, {args.rounds} x {args.seconds:g} s per "
        f"phase (alternating), {os.cpu_count()} CPUs shared by client, servers and training"
    )
    print(
        f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min); "
        f"2 training jobs running throughout: "
        f"{all(j['status'] == 'running' for j in jobs_after)}, epochs advanced "
        f"{[j['progress']['epoch'] - b for j, b in zip(jobs_after, epochs_before, strict=True)]}"
    )
    print(
        f"{'endpoint':<32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}"
        f" {'CPU us/req':>10}"
    )
    rates: list[float] = []
    errors = 0
    samples: list[str] = []
    per_request: list[float] = []
    for (name, _, _, pid), runs_of, spent in zip(phases, runs, cpu, strict=True):
        results, seconds = merged(runs_of)
        line, rps = row(name, results, seconds)
        used = spent / max(1, len(results.latencies_ms)) * 1e6 if pid else float("nan")
        per_request.append(used)
        print(f"{line} {used:10.0f}" if pid else f"{line} {'-':>10}")
        rates.append(rps)
        errors += results.errors
        samples += results.error_samples
    ceiling_rps = rates[-1]

    def share(rps: float) -> float:
        return rps / ceiling_rps if ceiling_rps else float("nan")

    ratio = share(rates[0])
    print(
        f"predict throughput = {ratio:.0%} of the ceiling (target >= 80%); errors: {errors} "
        f"(target 0) -> {'OK' if ratio >= 0.8 and errors == 0 else 'MISSED'}"
    )
    print(
        f"server CPU per request: the ceiling's is {per_request[-1] / per_request[0]:.0%} "
        "of :predict's (the same ratio without the scheduler's share in it)"
    )
    if args.workers > 1:
        print(
            f"scaling: {args.workers} workers answer {rates[1]:.1f} req/s = "
            f"{rates[1] / rates[0] if rates[0] else float('nan'):.2f}x one worker's "
            f"{rates[0]:.1f} ({share(rates[1]):.0%} of the one-process ceiling; "
            f"{os.cpu_count()} CPUs for client, servers and training)"
        )
    for sample in samples:
        print(f"  error: {sample}")


if __name__ == "__main__":
    main()
