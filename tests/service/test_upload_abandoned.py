"""A client that sends a large CSV and leaves before the answer: the server stops parsing it
and stores nothing (a finished parse would have stored the dataset nobody asked for any more).
Against a real `nn-service serve`, over a raw socket closed right after the body."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess
from waiting import wait_until

#: Rows of the CSV: parsing it takes seconds, far longer than noticing the client has gone.
ROWS = 400_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _multipart(csv: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode(),
        csv,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), boundary


def _finished_uploads(server: ServerProcess, status: str) -> float:
    """nns_http_requests_total of POST /v1/datasets with `status`, from /metrics."""
    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    pattern = (
        r'^nns_http_requests_total\{method="POST",route="/v1/datasets",status="'
        + status
        + r'"\} (\S+)$'
    )
    found = re.search(pattern, text, flags=re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_an_abandoned_csv_upload_stops_parsing_and_stores_nothing(server: ServerProcess) -> None:
    rows = "".join(f"{i % 97},{i % 13},{i % 7},{(i * 31) % 101},{i % 2}\n" for i in range(ROWS))
    body, boundary = _multipart(("a,b,c,d,label\n" + rows).encode(), "abandoned")
    head = (
        "POST /v1/datasets HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body)
    # Gone before any answer. The request ends as a 400 ("the client disconnected while the
    # upload was parsed"), never a 201: had parsing run to the end, the row would exist.
    wait_until(
        lambda: _finished_uploads(server, "400") + _finished_uploads(server, "201") >= 1,
        timeout=120,
        what="the abandoned upload to end",
    )
    assert (_finished_uploads(server, "400"), _finished_uploads(server, "201")) == (1, 0)
    headers = {"Authorization": f"Bearer {server.key}"}
    listed = httpx.get(f"{server.base}/v1/datasets", headers=headers, timeout=10).json()
    assert all(d["name"] != "abandoned" for d in listed["datasets"]), listed
    assert "Traceback" not in server.log_path.read_text()
