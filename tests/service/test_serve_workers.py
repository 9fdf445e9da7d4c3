"""`nn-service serve --workers 2` as a real process: both workers answer, one job runner,
alias moves seen by every worker, /metrics adding up the workers, SIGTERM stops them all."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobs_helpers import xor_spec
from server_process import NN_SERVICE, ServerProcess, free_port
from service_helpers import bearer
from waiting import process_alive, wait_until

WORKERS = 2


class WorkersServer(ServerProcess):
    """ServerProcess started with `--workers 2`."""

    def launch(self) -> str:
        self.starts += 1
        port = free_port()
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [str(NN_SERVICE), "serve", "--port", str(port), "--workers", str(WORKERS)],
                cwd=self.tmp_path,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    def worker_pids(self) -> set[int]:
        """The supervisor's child processes (the workers)."""
        assert self.process is not None
        pids: set[int] = set()
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            try:
                pids.update(int(pid) for pid in (task / "children").read_text().split())
            except OSError:
                continue
        return pids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkersServer]:
    process = WorkersServer(tmp_path_factory.mktemp("workers"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def answered_by(response: httpx.Response) -> int:
    return int(response.headers["x-nns-worker"])


def until_every_worker(
    server: WorkersServer, request: Callable[[], httpx.Response], what: str
) -> list[httpx.Response]:
    """Send `request` (a new connection each time) until every worker has answered it;
    returns all the responses."""
    workers = server.worker_pids()
    assert len(workers) == WORKERS, workers
    responses: list[httpx.Response] = []

    def every_worker_answered() -> bool:
        responses.append(request())
        return {answered_by(r) for r in responses} == workers

    wait_until(every_worker_answered, what=f"every worker to answer {what}")
    return responses


def train(server: WorkersServer, model: str) -> dict[str, Any]:
    headers = bearer(server.key)
    body = {"spec": xor_spec(), "dataset": "xor", "model_name": model}
    submitted = httpx.post(f"{server.base}/v1/jobs", json=body, headers=headers)
    assert submitted.status_code == 202, submitted.text
    url = f"{server.base}/v1/jobs/{submitted.json()['id']}"

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = httpx.get(url, headers=headers).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_until(ended, timeout=60, what=f"the job training {model} to end")


def test_two_workers_answer(server: WorkersServer) -> None:
    responses = until_every_worker(server, lambda: httpx.get(f"{server.base}/healthz"), "/healthz")
    assert all(r.status_code == 200 and r.json() == {"status": "ok"} for r in responses)


def test_metrics_add_up_across_workers(server: WorkersServer) -> None:
    route = "/v1/whoami"
    responses = until_every_worker(
        server, lambda: httpx.get(f"{server.base}{route}", headers=bearer(server.key)), route
    )
    assert all(r.status_code == 200 for r in responses)
    text = httpx.get(f"{server.base}/metrics").text
    line = f'nns_http_requests_total{{method="GET",route="{route}",status="200"}}'
    counts = [float(row.split()[-1]) for row in text.splitlines() if row.startswith(line)]
    assert counts == [len(responses)], text  # both workers' requests, counted once each


def test_jobs_run_once_and_alias_moves_on_every_worker(server: WorkersServer) -> None:
    headers = bearer(server.key)
    jobs = [train(server, "m"), train(server, "m")]
    assert [(j["status"], j["attempts"]) for j in jobs] == [("succeeded", 1)] * 2, jobs
    model = httpx.get(f"{server.base}/v1/models/m", headers=headers)
    assert model.status_code == 200, model.text
    assert len(model.json()["versions"]) == 2, model.text  # one version per job, no more
    runners = [line for line in server.log_path.read_text().splitlines() if "job runner" in line]
    assert len([line for line in runners if "started" in line]) == 1, runners  # worker 0 only

    def move(version: int) -> None:
        put = httpx.put(
            f"{server.base}/v1/models/m/aliases/production",
            json={"version": version},
            headers=headers,
        )
        assert put.status_code == 200, put.text

    def predict() -> httpx.Response:
        body = {"instances": [[0.0, 1.0]], "alias": "production"}
        return httpx.post(f"{server.base}/v1/models/m:predict", json=body, headers=headers)

    move(1)
    warm = until_every_worker(server, predict, "through the alias at version 1")
    assert {r.json()["version"] for r in warm} == {1}  # every worker now caches version 1
    move(2)
    moved = until_every_worker(server, predict, "through the alias at version 2")
    assert [r.json()["version"] for r in moved] == [2] * len(moved)


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    process = WorkersServer(tmp_path)
    process.start()
    workers = process.worker_pids()
    assert len(workers) == WORKERS
    process.stop()
    assert process.process is not None and process.process.returncode == 0
    assert not [pid for pid in workers if process_alive(pid)]
