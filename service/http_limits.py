"""Connection limits for uvicorn, including the read deadlines it does not have itself.

uvicorn (0.54) closes an idle kept-alive connection after `timeout_keep_alive` and answers 503
above `limit_concurrency`, but it waits forever for a request head that arrives slowly or
stops half-way (slow loris), and for a body that stops arriving. `DeadlineProtocol`, its
httptools protocol with two timers, closes such connections:

- the head must be complete within `http_header_timeout_seconds` of the connection opening
  or, on a kept-alive connection, of the next request's first byte;
- while a request body is incomplete, `http_body_timeout_seconds` may pass between two reads
  (an idle timeout, so a large upload on a slow link is fine; time the app itself stopped
  reading, to apply back-pressure, does not count);
- the head (request line and headers) may hold at most `http_max_head_bytes`: httptools
  sets no limit, so a client could otherwise grow one without bound within the deadline.
  Past it the answer is 431 and the connection is closed.

A reverse proxy should still buffer requests and cap connections per client (README,
"Reliability and security"); these limits keep one process safe without one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.config import Settings

log = logging.getLogger(__name__)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that closes connections too slow to send their request."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_head_bytes: int = 65536
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    #: Bytes received since the last complete head (None: a head is complete, a body or
    #: the app's answer is what the connection waits for).
    _head_bytes: int | None = 0
    #: Whether a head was completed while the current chunk was parsed.
    _head_ended: bool = False
    _head_too_large: bool = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.header_timeout, self._expire, "header")

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    # httptools parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._header_timer = self.loop.call_later(self.header_timeout, self._expire, "header")

    def data_received(self, data: bytes) -> None:
        waiting = self._head_bytes is not None
        self._head_ended = False
        super().data_received(data)
        if not waiting or self._head_ended or self._head_bytes is None:
            return  # a head ended in this chunk, or none was awaited: body bytes, not head
        # A head was awaited before this chunk and still is: all of it was head (httptools
        # holds it in memory until the line ends, so the cap must count what arrives).
        self._head_bytes += len(data)
        if self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._head_too_large = True
            self.send_400_response("")

    def on_headers_complete(self) -> None:
        self._head_bytes, self._head_ended = None, True
        self._cancel_timers()
        super().on_headers_complete()
        if self._serving_http():
            self._body_timer = self.loop.call_later(self.body_timeout, self._expire, "body")

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = self.loop.call_later(self.body_timeout, self._expire, "body")

    def on_message_complete(self) -> None:
        self._head_bytes = 0  # the next request's head, on a kept-alive connection
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # the head's size

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a bad request; 431 when the head was too large."""
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        text = f"request head larger than {self.max_head_bytes} bytes".encode()
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(text)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                text,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()

    # timers

    def _expire(self, part: str) -> None:
        if part == "body":
            self._body_timer = None
            if self.flow.read_paused:  # the app is not reading: not the client's delay
                self._body_timer = self.loop.call_later(self.body_timeout, self._expire, "body")
                return
        else:
            self._header_timer = None
        if self._serving_http():
            log.debug("closing a connection whose request %s did not arrive in time", part)
            self.transport.close()

    def _serving_http(self) -> bool:
        """False once the connection is closing or was upgraded (a WebSocket took it over)."""
        return not self.transport.is_closing() and self.transport.get_protocol() is self

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None


def protocol_class(settings: Settings) -> type[DeadlineProtocol]:
    """`DeadlineProtocol` with the settings' deadlines (uvicorn builds one per connection)."""
    return type(
        "DeadlineProtocol",
        (DeadlineProtocol,),
        {
            "header_timeout": settings.http_header_timeout_seconds,
            "body_timeout": settings.http_body_timeout_seconds,
            "max_head_bytes": settings.http_max_head_bytes,
        },
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The connection limits as `uvicorn.Config` keyword arguments."""
    return {
        "http": protocol_class(settings),
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "limit_concurrency": settings.http_max_connections,
    }
