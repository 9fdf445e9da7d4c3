"""`nn-service worker --check`, the workers' container health check, against real workers.

A real `nn-service worker` (local PostgreSQL and Redis) keeps a heartbeat file in its temporary
directory; `--check` must pass while it runs, fail once it is frozen for longer than the lease,
pass again when it thaws, and fail with one line when it stopped or was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from rq_helpers import WorkerProcess, worker_env
from server_process import NN_SERVICE
from service_helpers import make_settings

HEARTBEAT = 0.2
LEASE = 1.5


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NN_SERVICE), "worker", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _wait_for(env: dict[str, str], healthy: bool, worker: WorkerProcess) -> str:
    """The check's one line once it answers `healthy`; fails with the worker's log otherwise."""
    deadline = time.monotonic() + 60
    while True:
        done = _check(env)
        if (done.returncode == 0) == healthy:
            return (done.stdout + done.stderr).strip()
        assert time.monotonic() < deadline, f"{done.stderr}\n--- worker log:\n{worker.log()}"
        time.sleep(0.2)


@pytest.fixture
def env(tmp_path: Path, postgres_url: str, redis_url: str) -> dict[str, str]:
    """A worker's environment, its temporary directory (where heartbeats go) private."""
    settings = make_settings(
        postgres_url,
        tmp_path / "data",
        runner="rq",
        redis_url=redis_url,
        rq_queue=f"nns-test-{uuid.uuid4().hex[:10]}",
        heartbeat_seconds=HEARTBEAT,
        lease_seconds=LEASE,
    )
    (tmp_path / "tmp").mkdir()
    return worker_env(settings, TMPDIR=str(tmp_path / "tmp"))


def test_check_follows_a_real_worker_through_freeze_thaw_and_stop(
    tmp_path: Path, env: dict[str, str]
) -> None:
    done = _check(env)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("no worker heartbeat in ")
    assert len(done.stderr.strip().splitlines()) == 1

    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        line = _wait_for(env, True, worker)
        assert line.startswith(f"worker pid {worker.pid}: last heartbeat")

        worker.signal_group(signal.SIGSTOP)  # hung: alive, but no longer beating
        try:
            line = _wait_for(env, False, worker)
        finally:
            worker.signal_group(signal.SIGCONT)
        assert f"worker pid {worker.pid}" in line and "stale after 1.5 s" in line, line

        _wait_for(env, True, worker)
        assert worker.stop() == 0
        line = _wait_for(env, False, worker)  # a clean stop removes its heartbeat
        assert line.startswith("no worker heartbeat in "), line
    finally:
        worker.stop()


def test_check_says_when_the_worker_was_killed(tmp_path: Path, env: dict[str, str]) -> None:
    directory = Path(env["TMPDIR"]) / f"nn-service-workers-{os.getuid()}"
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        _wait_for(env, True, worker)
        worker.kill_group()
        line = _wait_for(env, False, worker)
        assert line.startswith(f"worker pid {worker.pid} is gone"), line
        assert (directory / f"{worker.pid}.json").exists()
    finally:
        worker.stop()
    # The next worker here is healthy, and clears the killed one's file away.
    successor = WorkerProcess(env, tmp_path / "successor.log")
    try:
        _wait_for(env, True, successor)
        assert [path.name for path in directory.iterdir()] == [f"{successor.pid}.json"]
    finally:
        successor.stop()


def test_heartbeat_dir_option_points_check_and_worker_at_one_place(
    tmp_path: Path, env: dict[str, str]
) -> None:
    directory = tmp_path / "beats"
    done = subprocess.run(
        [str(NN_SERVICE), "worker", "--check", "--heartbeat-dir", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and str(directory) in done.stderr
