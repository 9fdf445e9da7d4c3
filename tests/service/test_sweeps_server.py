"""Sweeps against `nn-service serve` as a real process: kill -9 mid-sweep and restart, the
SSE stream over a socket, and the `nn-service sweeps` CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobs_helpers import auth, parse_events, slow_spec, xor_spec
from server_process import ServerProcess
from waiting import process_alive, wait_until

TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path, database_url, checkpoint_every=1)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _submit(server: ServerProcess, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "dataset": "xor",
        "model_name": "xor-sweep",
        "spec": xor_spec(epochs=3),
        "search_space": {
            "optimizer.lr": {"type": "float", "low": 0.01, "high": 0.1, "log": True},
            "layers[0].units": {"type": "int", "low": 2, "high": 8},
        },
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "n_trials": 3,
        "max_parallel": 2,
        "sampler": "random",
        "pruner": "median",
        "seed": 3,
    }
    body.update(overrides)
    response = httpx.post(f"{server.base}/v1/sweeps", json=body, headers=auth(server.key))
    assert response.status_code == 202, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


def _sweep(server: ServerProcess, sweep_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.base}/v1/sweeps/{sweep_id}", headers=auth(server.key))
    assert response.status_code == 200, response.text
    sweep: dict[str, Any] = response.json()
    return sweep


@pytest.mark.slow
def test_kill_9_mid_sweep_and_restart_runs_exactly_n_trials(server: ServerProcess) -> None:
    n_trials = 4
    sweep_id = _submit(
        server, spec=slow_spec(epochs=16), n_trials=n_trials, pruner="none", max_parallel=2
    )
    # At least one trial mid-training (both running at once is the usual case, but a loaded
    # machine may start the second only as the first ends).
    wait_until(
        lambda: any(
            t["job_status"] == "running" and t["epoch"] >= 2
            for t in _sweep(server, sweep_id)["trials"]
        ),
        60,
        "a trial to be training",
    )
    children = server.training_pids()
    server.kill()
    for child in children:
        wait_until(lambda c=child: not process_alive(c), 30, "orphaned trials to stop")

    server.start()
    done = wait_until(
        lambda: (s := _sweep(server, sweep_id))["status"] in TERMINAL and s,
        180,
        "the sweep to finish after the restart",
    )
    assert done["status"] == "succeeded", done
    assert [t["number"] for t in done["trials"]] == list(range(n_trials))
    assert done["counts"]["complete"] == n_trials
    jobs = httpx.get(f"{server.base}/v1/jobs", headers=auth(server.key)).json()["items"]
    assert len(jobs) == n_trials  # none lost, none created twice
    assert {j["id"] for j in jobs} == {t["job_id"] for t in done["trials"]}
    assert {j["status"] for j in jobs} == {"succeeded"}
    assert max(j["attempts"] for j in jobs) == 2  # the interrupted trials resumed
    assert all(j["progress"]["epoch"] == 16 for j in jobs)
    versions = httpx.get(f"{server.base}/v1/models/xor-sweep", headers=auth(server.key)).json()[
        "versions"
    ]
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["job_id"] == done["best_trial"]["job_id"]


def test_sse_stream_follows_the_sweep_to_its_end(server: ServerProcess) -> None:
    sweep_id = _submit(server)
    with httpx.stream(
        "GET",
        f"{server.base}/v1/sweeps/{sweep_id}/events",
        headers=auth(server.key),
        timeout=httpx.Timeout(10, read=90),
    ) as response:
        assert response.status_code == 200
        text = "".join(response.iter_text())  # returns only because the server ends it
    events = parse_events(text)
    assert events[0]["event"] == "snapshot"
    assert events[-1]["event"] == "end"
    assert events[-1]["data"]["status"] == "succeeded"
    trial_events = [e["data"] for e in events if e["event"] == "trial"]
    assert {e["number"] for e in trial_events} == {0, 1, 2}
    assert all(e["sweep_id"] == sweep_id for e in trial_events)
    assert any(e["state"] == "complete" for e in trial_events)


@pytest.mark.slow
def test_cli_submit_watch_and_cancel(server: ServerProcess, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(xor_spec(epochs=3)))
    space_file = tmp_path / "space.json"
    space_file.write_text(
        json.dumps({"optimizer.lr": {"type": "float", "low": 0.01, "high": 0.1, "log": True}})
    )
    connection = ["--url", server.base]
    submitted = server.run_cli(
        "sweeps",
        "submit",
        "--spec",
        str(spec_file),
        "--search-space",
        str(space_file),
        "--dataset",
        "xor",
        "--model-name",
        "cli-sweep",
        "--metric",
        "accuracy",
        "--n-trials",
        "2",
        "--watch",
        *connection,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "succeeded" in submitted.stdout
    assert "best trial" in submitted.stdout
    assert "cli-sweep version 1" in submitted.stdout
    assert "#1" in submitted.stdout  # the table of trials

    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(slow_spec(epochs=300)))
    started = server.run_cli(
        "sweeps",
        "submit",
        "--spec",
        str(slow),
        "--search-space",
        str(space_file),
        "--dataset",
        "xor",
        "--model-name",
        "cli-sweep",
        "--metric",
        "accuracy",
        "--n-trials",
        "5",
        *connection,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    sweep_id = started.stdout.split()[0]
    assert sweep_id.startswith("sweep_")
    cancelled = server.run_cli("sweeps", "cancel", sweep_id, *connection)
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    watched = server.run_cli("sweeps", "watch", sweep_id, *connection)
    assert watched.returncode == 3, watched.stdout + watched.stderr  # cancelled
    assert "cancelled" in watched.stdout
