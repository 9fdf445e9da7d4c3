"""Jobs against `nn-service serve` as a real process: SSE over a socket, kill -9 and restart,
and the `nn-service jobs` CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobs_helpers import (
    auth,
    parse_events,
    slow_spec,
    wait_for_job_sync,
    xor_spec,
)
from server_process import ServerProcess
from waiting import process_alive, wait_until


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path, database_url, checkpoint_every=1)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _submit(server: ServerProcess, spec: dict[str, Any], name: str = "m") -> str:
    response = httpx.post(
        f"{server.base}/v1/jobs",
        json={"spec": spec, "dataset": "xor", "model_name": name},
        headers=auth(server.key),
    )
    assert response.status_code == 202, response.text
    assert response.headers["location"].startswith("/v1/jobs/job_")
    job_id: str = response.json()["id"]
    return job_id


def _done(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


def test_sse_stream_ends_with_the_job(server: ServerProcess) -> None:
    job_id = _submit(server, xor_spec(epochs=8))
    with httpx.stream(
        "GET",
        f"{server.base}/v1/jobs/{job_id}/events",
        headers=auth(server.key),
        timeout=httpx.Timeout(10, read=60),
    ) as response:
        assert response.status_code == 200
        text = "".join(response.iter_text())  # returns only because the server ends it
    events = parse_events(text)
    assert events[0]["event"] == "snapshot"
    assert events[-1]["event"] == "end" and events[-1]["data"]["status"] == "succeeded"
    epochs = [e["data"]["epoch"] for e in events if e["event"] == "progress"]
    start = events[0]["data"]["progress"]["epoch"]
    assert epochs == list(range(start + 1, 9))


def test_api_answers_while_jobs_train(server: ServerProcess) -> None:
    jobs = [_submit(server, slow_spec(epochs=300), f"m{i}") for i in range(2)]
    for job_id in jobs:
        wait_for_job_sync(server.base, server.key, job_id, lambda j: j["progress"]["epoch"] >= 1)

    def progress() -> dict[str, tuple[str, int]]:
        response = httpx.get(f"{server.base}/v1/jobs", headers=auth(server.key))
        assert response.status_code == 200, response.text
        items = {item["id"]: item for item in response.json()["items"]}
        return {i: (items[i]["status"], items[i]["progress"]["epoch"]) for i in jobs}

    # At least 20 answers, each while both jobs are still training (a blocked event loop
    # would answer only after the jobs' whole run), and over them both jobs advanced.
    answers = [progress() for _ in range(20)]

    def both_advanced() -> bool:
        answers.append(progress())
        return all(answers[-1][i][1] > answers[0][i][1] for i in jobs)

    wait_until(both_advanced, 60, "both jobs to advance while the API answers")
    for answer in answers:
        assert all(status == "running" and epoch < 300 for status, epoch in answer.values())
    for job_id in jobs:
        httpx.post(f"{server.base}/v1/jobs/{job_id}/cancel", headers=auth(server.key))
    for job_id in jobs:
        assert wait_for_job_sync(server.base, server.key, job_id, _done)["status"] == "cancelled"


@pytest.mark.slow
def test_kill_9_and_restart_resumes_with_the_history_intact(server: ServerProcess) -> None:
    epochs = 30
    job_id = _submit(server, slow_spec(epochs=epochs))
    wait_for_job_sync(server.base, server.key, job_id, lambda j: j["progress"]["epoch"] >= 4)
    [child] = server.training_pids()
    server.kill()

    # The orphaned training process notices its parent is gone and stops at once.
    wait_until(lambda: not process_alive(child), 30, "the orphaned training process to stop")
    server.start()
    done = wait_for_job_sync(server.base, server.key, job_id, _done, timeout=90)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    assert done["progress"]["epoch"] == epochs

    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = httpx.get(
            f"{server.base}/v1/jobs/{job_id}/metrics",
            params={"after_epoch": after, "limit": 7},
            headers=auth(server.key),
        ).json()
        items += page["items"]
        if page["next_after_epoch"] is None:
            break
        after = page["next_after_epoch"]
    assert [item["epoch"] for item in items] == list(range(1, epochs + 1))
    assert page["total"] == epochs
    log = server.log_path.read_text()
    assert "its worker is gone; now queued" in log
    assert "resuming from the checkpoint of epoch" in log


@pytest.mark.slow
def test_cli_submit_watch_and_cancel(server: ServerProcess, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(xor_spec(epochs=5)))
    connection = ["--url", server.base]  # the key comes from <data_dir>/admin-key

    submitted = server.run_cli(
        "jobs",
        "submit",
        "--spec",
        str(spec_file),
        "--dataset",
        "xor",
        "--model",
        "cli-net",
        *connection,
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert job_id.startswith("job_")

    watched = server.run_cli("jobs", "watch", job_id, *connection)
    assert watched.returncode == 0, watched.stderr
    assert "5/5" in watched.stdout and "loss" in watched.stdout
    assert f"job {job_id} succeeded: cli-net version 1" in watched.stdout

    slow_file = tmp_path / "slow.json"
    slow_file.write_text(json.dumps(slow_spec(epochs=300)))
    long_job = server.run_cli(
        "jobs",
        "submit",
        "--spec",
        str(slow_file),
        "--dataset",
        "xor",
        "--model",
        "cli-net",
        "--key",
        server.key,
        *connection,
    ).stdout.strip()
    wait_for_job_sync(server.base, server.key, long_job, lambda j: j["progress"]["epoch"] >= 1)
    cancelled = server.run_cli("jobs", "cancel", long_job, *connection)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() in (f"job {long_job}: cancelling", f"job {long_job}: cancelled")
    after_cancel = server.run_cli("jobs", "watch", long_job, *connection)
    assert after_cancel.returncode == 3
    assert "was cancelled" in after_cancel.stdout

    bad = server.run_cli(
        "jobs", "submit", "--spec", "-", "--dataset", "nope", "--model", "m", *connection
    )
    assert bad.returncode == 2  # stdin is empty: not a JSON spec
    assert "not valid JSON" in bad.stderr
    unknown = server.run_cli("jobs", "watch", "job_0000000000000000", *connection)
    assert unknown.returncode == 2 and "HTTP 404" in unknown.stderr
    wrong_key = server.run_cli("jobs", "cancel", long_job, "--key", "nns_x_y", *connection)
    assert wrong_key.returncode == 2 and "HTTP 401" in wrong_key.stderr
