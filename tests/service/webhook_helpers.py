"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from fastapi import FastAPI

from service import auth
from service.db import Database


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers the queued status codes in turn, then 200 (`endless`:
    with a body that never ends, until the client hangs up)."""

    port: int = 0
    endless: bool = False
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def answered(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                receiver.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            if receiver.endless:
                self.end_headers()  # no length: the body runs until the connection closes
                self.close_connection = True
                try:
                    while True:
                        self.wfile.write(b"x" * 16384)
                except OSError:
                    return
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


def key_for(app: FastAPI, owner: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_key(db(app), owner).key}"}


async def register(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, *events: str
) -> httpx.Response:
    body = {"url": url, "events": list(events) or ["alias.moved"]}
    return await client.post("/v1/webhooks", headers=headers, json=body)
