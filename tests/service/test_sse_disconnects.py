"""Clients leaving SSE streams on a real `nn-service serve`: a disconnect is normal, so the
server logs no error or traceback for it and keeps serving.

The streams replay a running job's epochs (Last-Event-ID: 0) to clients that never read, so
the server has events in hand and its writes are blocked when the clients vanish: the case
where FastAPI's own SSE pipeline raised BrokenResourceError.
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jobs_helpers import TERMINAL, auth, xor_spec
from server_process import ServerProcess
from waiting import wait_until

STREAMS = 20
EVENTS_ROUTE = "/v1/jobs/{job_id}/events"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    # A loaded machine may stall the training child for seconds: no lease expiry meanwhile.
    process = ServerProcess(tmp_path, heartbeat_seconds=1, lease_seconds=60)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _job_with_many_epochs(server: ServerProcess) -> str:
    body = {"spec": xor_spec(epochs=1000, batch_size=64), "dataset": "xor", "model_name": "m"}
    response = httpx.post(f"{server.base}/v1/jobs", json=body, headers=auth(server.key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]

    def far_enough() -> bool:
        job = httpx.get(f"{server.base}/v1/jobs/{job_id}", headers=auth(server.key)).json()
        return job["status"] in TERMINAL or job["progress"]["epoch"] >= 150

    wait_until(far_enough, timeout=120, what="150 epochs to replay")
    return job_id


def _open_stream(server: ServerProcess, job_id: str) -> socket.socket:
    """A stream whose client reads its first bytes and then nothing more."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        f"GET /v1/jobs/{job_id}/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n"
        f"Authorization: Bearer {server.key}\r\n\r\n".encode()
    )
    assert sock.recv(64).startswith(b"HTTP/1.1 200")
    return sock


def _finished_streams(server: ServerProcess) -> int:
    """Stream requests the server has finished handling (counted after any error is logged)."""
    text = httpx.get(f"{server.base}/metrics", headers=auth(server.key)).text
    pattern = rf'nns_http_requests_total\{{[^}}]*route="{re.escape(EVENTS_ROUTE)}"[^}}]*\}} (\S+)'
    return int(sum(float(v) for v in re.findall(pattern, text)))


def test_clients_leaving_streams_log_no_error(server: ServerProcess) -> None:
    job_id = _job_with_many_epochs(server)
    streams = [_open_stream(server, job_id) for _ in range(STREAMS)]
    for index, sock in enumerate(streams):
        if index % 2:  # half reset the connection, half close it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    wait_until(
        lambda: _finished_streams(server) >= STREAMS,
        timeout=60,
        what="the server to finish every stream",
    )
    assert httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200
    job = httpx.get(f"{server.base}/v1/jobs/{job_id}", headers=auth(server.key))
    assert job.status_code == 200
    log = server.log_path.read_text()
    assert "Traceback" not in log
    errors = [line for line in log.splitlines() if '"level": "ERROR"' in line]
    assert errors == []
