"""Faults for real, against `nn-service serve` processes: kill -9 at random points, a full
disk and a read-only database.

- 20 random kill -9s, each of the server or of a training subprocess, while jobs train: every
  job still ends succeeded, its metric history holds each epoch exactly once, and each job
  registers exactly one version whose weights equal an uninterrupted run's (so nothing was
  ever registered from a half-written or stale checkpoint).
- A database on a tiny tmpfs that fills up, or whose write lock another process holds past
  the busy timeout: writes answer a JSON 503 naming the cause, never a 500; reads keep
  working; afterwards the same server accepts writes without a restart. On a read-only
  filesystem the server refuses to start with a one-line reason. Needs root to mount
  (skipped otherwise).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from jobs_helpers import auth, slow_spec, wait_for_job_sync
from server_process import NN_SERVICE, ServerProcess
from waiting import wait_until

from nn_core.serialize import load_model

pytestmark = pytest.mark.slow

KILLS = 20
EPOCHS = 24
TERMINAL = {"succeeded", "failed", "cancelled"}


def _submit(server: ServerProcess, name: str) -> str:
    body = {"spec": slow_spec(epochs=EPOCHS), "dataset": "xor", "model_name": name}
    response = httpx.post(f"{server.base}/v1/jobs", json=body, headers=auth(server.key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _jobs(server: ServerProcess) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.base}/v1/jobs", params={"limit": 200}, headers=auth(server.key), timeout=10
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _train_a_little(server: ServerProcess, epochs: int) -> None:
    """Wait until the jobs have trained `epochs` more epochs between them (or fewer than two
    are left training, when the caller submits another)."""

    def progress() -> tuple[int, int]:
        jobs = _jobs(server)
        active = sum(j["status"] not in TERMINAL for j in jobs)
        return sum(j["progress"]["epoch"] for j in jobs), active

    start, _ = progress()

    def trained() -> bool:
        done, active = progress()
        return done >= start + epochs or active < 2

    wait_until(trained, 60, f"{epochs} more epochs of training")


def _history(server: ServerProcess, job_id: str) -> list[int]:
    epochs: list[int] = []
    after = 0
    while True:
        page = httpx.get(
            f"{server.base}/v1/jobs/{job_id}/metrics",
            params={"after_epoch": after, "limit": 10},
            headers=auth(server.key),
        ).json()
        epochs += [item["epoch"] for item in page["items"]]
        if page["next_after_epoch"] is None:
            return epochs
        after = page["next_after_epoch"]


def _weights(server: ServerProcess, model: str, version: int) -> np.ndarray:
    response = httpx.get(
        f"{server.base}/v1/models/{model}/versions/{version}/download", headers=auth(server.key)
    )
    assert response.status_code == 200, response.text
    params: np.ndarray = load_model(response.content).params
    return params


def test_random_kill_9s_lose_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("NNS_FAULT_SEED", "20261123"))
    rng = random.Random(seed)
    server = ServerProcess(
        tmp_path,
        f"sqlite:///{tmp_path / 'nns.db'}",
        checkpoint_every=3,
        job_max_attempts=100,
        max_concurrent_jobs=2,
    )
    server.start()
    actions: list[str] = []
    submitted: list[str] = []
    try:
        submitted += [_submit(server, f"chaos{i}") for i in range(3)]
        for _ in range(KILLS):
            _train_a_little(server, rng.randint(2, 10))  # a random point mid-training
            active = [j for j in _jobs(server) if j["status"] not in TERMINAL]
            if len(active) < 2:
                submitted.append(_submit(server, f"chaos{len(submitted)}"))
            children = server.training_pids()
            if children and rng.random() < 0.6:
                victim = rng.choice(children)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
                actions.append(f"job process {victim}")
            else:
                server.kill()
                actions.append("server")
                server.start()
        context = f"seed {seed}, kills: {actions}"
        attempts: dict[str, int] = {}

        for job_id in submitted:
            done = wait_for_job_sync(
                server.base, server.key, job_id, lambda j: j["status"] in TERMINAL, timeout=120
            )
            assert done["status"] == "succeeded", (done["failure_reason"], context)
            assert done["progress"]["epoch"] == EPOCHS, (done, context)
            assert _history(server, job_id) == list(range(1, EPOCHS + 1)), (job_id, context)
            attempts[job_id] = done["attempts"]
        # The kills hit training: jobs were resumed, some more than once.
        assert sum(attempts.values()) > len(submitted) + KILLS // 4, (attempts, context)
        print(f"{len(submitted)} jobs; attempts {sorted(attempts.values())}; {context}")

        # One uninterrupted run of the same spec (same seed) is the reference for every job.
        reference_id = _submit(server, "reference")
        reference = wait_for_job_sync(
            server.base, server.key, reference_id, lambda j: j["status"] in TERMINAL, timeout=60
        )
        assert reference["status"] == "succeeded", reference
        expected = _weights(server, "reference", 1)
        models = httpx.get(f"{server.base}/v1/models", headers=auth(server.key)).json()
        by_name = {m["name"]: m for m in models["models"]}
        for index, job_id in enumerate(submitted):
            model = by_name[f"chaos{index}"]
            assert model["n_versions"] == 1, (model, context)  # registered exactly once
            assert model["latest_version"]["job_id"] == job_id
            got = _weights(server, f"chaos{index}", 1)
            np.testing.assert_array_equal(got, expected, err_msg=f"{job_id}: {context}")
        assert any(a == "server" for a in actions) and any(a != "server" for a in actions)
    finally:
        server.stop()


# ----------------------------------------------------------------------------- disk


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (root only); unmounted afterwards."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(path: Path) -> None:
    """Write zeros until the filesystem is full (unbuffered: nothing left to flush)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def _upload(server: ServerProcess, name: str) -> httpx.Response:
    csv = b"a,b,y\n" + b"".join(f"{i},{i * 7 % 13},{i % 2}\n".encode() for i in range(4000))
    return httpx.post(
        f"{server.base}/v1/datasets",
        headers=auth(server.key),
        files={"file": (f"{name}.csv", io.BytesIO(csv))},
        data={"label_column": "y"},
        timeout=30,
    )


def _assert_clear_503(
    response: httpx.Response, *words: str, type: str = "database_unavailable"
) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"]
    error = response.json()["error"]
    assert error["type"] == type
    assert "Traceback" not in response.text
    assert any(word in error["message"] for word in words), error["message"]


def test_full_disk_locked_and_read_only_database(tiny_disk: Path) -> None:
    """Full disk and a write lock held elsewhere: 503 while it lasts, fine after, no restart.
    A read-only filesystem: the server refuses to start with a one-line reason.

    (A filesystem cannot be remounted read-only under a running server: Linux answers EBUSY
    while SQLite holds its files open for writing, so read-only is tested at start-up.)
    """
    database = tiny_disk / "nns.db"
    server = ServerProcess(tiny_disk.parent, f"sqlite:///{database}", sqlite_busy_timeout_ms=300)
    server.data_dir = tiny_disk / "data"
    server.env["NNS_DATA_DIR"] = str(server.data_dir)
    server.start()
    try:
        assert _upload(server, "before").status_code == 201

        _fill(tiny_disk / "filler")
        # The upload's arrays go to a blob file first (service/dataset_blobs.py).
        _assert_clear_503(_upload(server, "full"), "full", type="storage_unavailable")
        job = httpx.post(
            f"{server.base}/v1/jobs",
            json={"spec": slow_spec(epochs=2), "dataset": "xor", "model_name": "m"},
            headers=auth(server.key),
        )
        _assert_clear_503(job, "full")
        listed = httpx.get(f"{server.base}/v1/datasets", headers=auth(server.key))
        assert listed.status_code == 200  # reads keep working
        uploads = [d["name"] for d in listed.json()["datasets"] if d["source"] == "upload"]
        assert uploads == ["before"]
        (tiny_disk / "filler").unlink()
        assert _upload(server, "after-full").status_code == 201

        with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            _assert_clear_503(_upload(server, "locked"), "locked")
            assert httpx.get(f"{server.base}/v1/whoami", headers=auth(server.key)).is_success
            other.execute("ROLLBACK")
        assert _upload(server, "after-lock").status_code == 201
        log = server.log_path.read_text()
        assert "Traceback" not in log and "unhandled error" not in log
    finally:
        server.stop()

    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    try:
        started = subprocess.run(
            [str(NN_SERVICE), "serve", "--port", "0"],
            cwd=server.tmp_path,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    assert started.returncode == 1, started.stderr
    assert "Traceback" not in started.stderr
    assert f"nn-service: error: cannot use the database sqlite:///{database}" in started.stderr
