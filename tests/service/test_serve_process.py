"""`nn-service serve` as a real process on 127.0.0.1: first start, admin key, auth, 413 shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess
from service_helpers import bearer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running server on its defaults, with a fresh data dir and a small body limit."""
    process = ServerProcess(tmp_path, max_body_bytes=65536)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_serve_first_start(server: ServerProcess) -> None:
    base, data_dir, log_path = server.base, server.data_dir, server.log_path
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}

    key_file = data_dir / "admin-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    assert (data_dir / "nns.db").is_file()  # the default database lives in the data dir

    whoami = httpx.get(f"{base}/v1/whoami", headers=bearer(key))
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["owner"] == "admin"
    assert httpx.get(f"{base}/v1/whoami").status_code == 401

    too_big = httpx.post(f"{base}/v1/whoami", content=b"x" * 100_000, headers=bearer(key))
    assert too_big.status_code == 413
    assert too_big.json()["error"]["type"] == "payload_too_large"

    log = log_path.read_text()
    assert str(key_file) in log  # where the key is, never the key
    assert key not in log and key.split("_", 2)[2] not in log
