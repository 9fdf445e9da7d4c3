"""Connection limits on a real `nn-service serve`: slow-loris heads and stalled bodies are
disconnected, idle kept-alive connections closed, and beyond the connection limit requests
are answered 503, while ordinary requests keep being served. Bounds are generous: the
machine may be loaded."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess
from waiting import wait_until

#: Deadline set on the server; a connection must be gone well within CLOSED_WITHIN.
DEADLINE_SECONDS = 1
CLOSED_WITHIN = 20.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path,
        http_header_timeout_seconds=DEADLINE_SECONDS,
        http_body_timeout_seconds=DEADLINE_SECONDS,
        http_keep_alive_seconds=DEADLINE_SECONDS,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _connect(server: ServerProcess, stack: ExitStack, first_bytes: bytes = b"") -> socket.socket:
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=5))
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def _closed_by_server(sock: socket.socket) -> bytes:
    """Read until the server closes the connection; what it sent before closing."""
    received = b""
    deadline = time.monotonic() + CLOSED_WITHIN
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"still open after {CLOSED_WITHIN} s; received {received[:200]!r}")


def test_slow_loris_heads_are_disconnected_and_others_still_served(
    server: ServerProcess,
) -> None:
    with ExitStack() as stack:
        partial = [_connect(server, stack, b"GET / HTTP/1.1\r\nHost: x\r\n") for _ in range(5)]
        silent = _connect(server, stack)  # connects and never sends a byte
        assert httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200
        for sock in [*partial, silent]:
            assert _closed_by_server(sock) == b""
    assert httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200


def test_a_second_request_head_on_a_kept_alive_connection_has_the_same_deadline(
    server: ServerProcess,
) -> None:
    with ExitStack() as stack:
        sock = _connect(
            server, stack, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n"
        )
        received = _closed_by_server(sock)
    assert received.startswith(b"HTTP/1.1 ") and received.count(b"HTTP/1.1 ") == 1


def test_a_stalled_body_is_disconnected(server: ServerProcess) -> None:
    head = (
        f"POST /v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    with ExitStack() as stack:
        sock = _connect(server, stack, head + b"--b\r\n")
        received = _closed_by_server(sock)
    assert b" 201 " not in received
    assert httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200


def test_an_idle_kept_alive_connection_is_closed(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        with ExitStack() as stack:
            sock = _connect(server, stack, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _closed_by_server(sock).startswith(b"HTTP/1.1 200 ")


def test_beyond_the_connection_limit_requests_are_answered_503(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, http_max_connections=3)
    server.start()
    try:
        with ExitStack() as stack:
            held = [_connect(server, stack, b"GET / HTTP/1.1\r\n") for _ in range(3)]
            assert all(sock.fileno() >= 0 for sock in held)

            def refused() -> bool:
                return httpx.get(f"{server.base}/readyz", timeout=10).status_code == 503

            wait_until(refused, timeout=10, what="a 503 while 3 connections are held")
        wait_until(
            lambda: httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200,
            timeout=10,
            what="the server to serve again once the connections are gone",
        )
    finally:
        server.stop()


def test_an_oversized_request_head_answers_431_and_is_closed(server: ServerProcess) -> None:
    """httptools sets no limit on a head's size: without ours, a client could send headers
    without end within the deadline."""
    with ExitStack() as stack:
        sock = _connect(server, stack)
        # A header value that never ends, 64 bytes past the 64 KiB default and not one more:
        # the limit is crossed by the last bytes sent, so the server has read everything when
        # it closes (unread bytes would turn its close into a reset, losing the answer).
        head = b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Filler: "
        sock.sendall(head + b"a" * (65536 + 64 - len(head)))
        answer = _closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"request head larger than 65536 bytes" in answer
    fine = httpx.get(f"{server.base}/readyz", headers={"X-Filler": "a" * 8192}, timeout=10)
    assert fine.status_code == 200
    # A body counts against nothing of the head's, however it arrives in chunks.
    for _ in range(3):
        body = httpx.post(f"{server.base}/v1/datasets", content=b"a" * 300_000, timeout=10)
        assert body.status_code == 401, body.text  # refused for want of a key, not 431
