"""The data dir is 0700 and every file the service writes there 0600, whatever the umask.

A real `nn-service serve` started with umask 000 (the worst case: without the service's own
modes everything would be world-writable) on an empty data dir, then made to write a batch
prediction result through its training child process.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jobs_helpers import TERMINAL, auth
from server_process import ServerProcess
from serving_helpers import xor_model_file
from waiting import wait_until

from service.private_files import private_sqlite_file


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    # A loaded machine may take seconds to start the child: no lease expiry meanwhile.
    process = ServerProcess(tmp_path, heartbeat_seconds=1, lease_seconds=60)
    assert not process.data_dir.exists()
    previous = os.umask(0)  # inherited by the server and its training children
    try:
        process.launch()
    finally:
        os.umask(previous)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _batch_prediction(server: ServerProcess) -> None:
    headers = auth(server.key)
    uploaded = httpx.post(
        f"{server.base}/v1/models/m/versions",
        headers=headers,
        files={"file": ("model.npz", xor_model_file())},
    )
    assert uploaded.status_code == 201, uploaded.text
    submitted = httpx.post(
        f"{server.base}/v1/batch-predictions",
        headers=headers,
        json={"model": "m", "dataset": "xor", "split": "test"},
    )
    assert submitted.status_code == 202, submitted.text
    location = f"{server.base}{submitted.headers['location']}"

    def finished() -> dict[str, object] | None:
        batch: dict[str, object] = httpx.get(location, headers=headers).json()
        return batch if batch["status"] in TERMINAL else None

    batch = wait_until(finished, timeout=90, what="the batch prediction to end")
    assert batch["status"] == "succeeded", batch


def test_the_data_dir_and_its_files_are_private_under_any_umask(server: ServerProcess) -> None:
    _batch_prediction(server)
    data = server.data_dir
    assert _mode(data) == 0o700
    assert _mode(data / "nns.db") == 0o600
    assert (data / "nns.db-wal").exists()  # WAL mode: SQLite made it, from the db's mode
    results = data / "batch-predictions"
    assert [p.suffix for p in results.iterdir()] == [".csv"]
    written = sorted(p for p in data.rglob("*"))
    assert {data / "admin-key", data / "nns.db-shm"} <= set(written)
    modes = {str(p.relative_to(data)): oct(_mode(p)) for p in written}
    expected = {str(p.relative_to(data)): oct(0o700 if p.is_dir() else 0o600) for p in written}
    assert modes == expected


def test_existing_files_of_an_older_version_are_made_private(tmp_path: Path) -> None:
    """A database and its companions created 0644 by an older version are tightened."""
    database = tmp_path / "nns.db"
    for path in (database, tmp_path / "nns.db-wal", tmp_path / "nns.db-shm"):
        path.write_bytes(b"")
        path.chmod(0o644)
    private_sqlite_file(database)
    assert {p.name: _mode(p) for p in tmp_path.iterdir()} == {
        "nns.db": 0o600,
        "nns.db-wal": 0o600,
        "nns.db-shm": 0o600,
    }
