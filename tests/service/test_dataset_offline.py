"""Offline users get a short, actionable reason: a real server whose downloads go through a
proxy on a closed port of 127.0.0.1 (a refused connection, as without a network) trains
jobs on built-in datasets it does not have."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobs_helpers import auth, parse_events, wait_for_job_sync
from server_process import ServerProcess

from nn_core.datasets.catalog import MAX_SUMMARY


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released, never listened)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path)
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        process.env[name] = proxy  # urllib sends every download there: refused at once
    for name in ("no_proxy", "NO_PROXY"):
        process.env.pop(name, None)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _failed_job(server: ServerProcess, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.base}/v1/jobs", json=body, headers=auth(server.key))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job = wait_for_job_sync(server.base, server.key, job_id, lambda j: j["status"] == "failed")
    return job


def test_mnist_offline_names_the_directory_and_the_stand_in(server: ServerProcess) -> None:
    body = {"spec": "mnist-mlp", "dataset": "mnist", "model_name": "digits", "epochs": 1}
    job = _failed_job(server, body)
    reason = job["failure_reason"]
    directory = server.data_dir.absolute() / "datasets" / "mnist"
    assert reason == (
        "mnist is not on this machine and cannot be downloaded (no connection): put its 4 "
        f"files (train-images-idx3-ubyte.gz ...) in {directory}, or train on fashion-mnist "
        "instead (apt-get install dataset-fashion-mnist)"
    )
    assert len(reason) <= MAX_SUMMARY
    assert job["model_version"] is None and job["test_metrics"] is None

    # The stream's end event says the same; a reader following it is never left guessing.
    with httpx.stream(
        "GET", f"{server.base}/v1/jobs/{job['id']}/events", headers=auth(server.key)
    ) as response:
        events = parse_events("".join(response.iter_text()))
    assert events[-1]["event"] == "end"
    assert events[-1]["data"]["failure_reason"] == reason


def test_sms_spam_offline_names_the_file_once(server: ServerProcess) -> None:
    body = {"spec": "spam-mlp", "dataset": "sms-spam", "model_name": "spam", "epochs": 1}
    reason = _failed_job(server, body)["failure_reason"]
    directory = server.data_dir.absolute() / "datasets" / "sms-spam"
    assert reason == (
        "sms-spam is not on this machine and cannot be downloaded (no connection): put "
        f"SMSSpamCollection in {directory} (it is in the zip at "
        "https://archive.ics.uci.edu/dataset/228)"
    )
    assert len(reason) <= MAX_SUMMARY
    assert "sha256" not in reason and "127.0.0.1" not in reason  # no per-mirror story


def test_a_long_data_dir_still_gives_a_reason_within_the_cap(tmp_path: Path) -> None:
    """The cap holds whatever the path: the optional parts go first."""
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 4)
    process = ServerProcess(tmp_path, data_dir=str(deep))
    process.data_dir = deep  # where the admin key is written
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        process.env[name] = f"http://127.0.0.1:{closed_port()}"
    process.start()
    try:
        body = {"spec": "mnist-mlp", "dataset": "mnist", "model_name": "d", "epochs": 1}
        reason = _failed_job(process, body)["failure_reason"]
    finally:
        process.stop()
    assert len(reason) <= MAX_SUMMARY, reason
    assert str(deep / "datasets" / "mnist") in reason
