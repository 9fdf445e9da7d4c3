"""Server-Sent Events for the /events routes: our own streaming response, quiet when a client
leaves.

FastAPI's `EventSourceResponse` pipeline runs the route's generator and a keep-alive timer in a
task group whose streams are closed in the wrong order when a client disconnects: a keep-alive
task that is handing over an event then raises BrokenResourceError (or ClosedResourceError),
logged as an unhandled error for many clients that close a busy stream (fastapi discussion
#15725). A client leaving is normal, not an error.

`EventStream` is a plain `StreamingResponse` (not an `EventSourceResponse`, so FastAPI hands
it the route's generator untouched): one task reads the generator and a loop forwards its
events, with a `: ping` comment after `PING_SECONDS` of silence so proxies keep the
connection. When the client leaves, Starlette cancels the response; the task reading the
generator is cancelled before any stream is closed, so nothing is raised or logged, and the
generator stops at its next await.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterable, Mapping
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from fastapi.encoders import jsonable_encoder
from fastapi.sse import ServerSentEvent, format_sse_event
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse
from starlette.types import Send

#: Seconds without an event after which a comment is sent (FastAPI's own interval).
PING_SECONDS = 15.0
PING = b": ping\n\n"
#: The OpenAPI `content` of a 200 stream: the schema of each event (as FastAPI documents its
#: own SSE routes), to go beside the route's description of the events.
EVENT_CONTENT: dict[str, Any] = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "properties": {
                "data": {"type": "string"},
                "event": {"type": "string"},
                "id": {"type": "string"},
                "retry": {"type": "integer", "minimum": 0},
            },
        }
    }
}
#: No caching; nginx must not buffer the stream.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode(event: ServerSentEvent) -> bytes:
    """One event in the wire format; `data` as JSON (non-finite floats as null)."""
    if event.raw_data is not None:
        data: str | None = event.raw_data
    elif event.data is None:
        data = None
    elif hasattr(event.data, "model_dump_json"):
        data = event.data.model_dump_json()
    else:
        data = json.dumps(_finite(jsonable_encoder(event.data)))
    return format_sse_event(
        data_str=data, event=event.event, id=event.id, retry=event.retry, comment=event.comment
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class EventStream(StreamingResponse):
    """`text/event-stream` from an async iterable of `ServerSentEvent` (see the module doc)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[ServerSentEvent],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        headers = {**STREAM_HEADERS, **(headers or {})}
        # stream_response reads `events`; Starlette's body iterator stays empty.
        super().__init__((), status_code, headers, media_type, background)
        self.events = content

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        to_send, to_forward = anyio.create_memory_object_stream[bytes]()
        async with to_forward, anyio.create_task_group() as tasks:  # the reader ends first
            tasks.start_soon(self._read_events, to_send)
            try:
                await self._forward(to_forward, send)
            finally:
                # Cancel the reader before its stream is closed: a send under way is cancelled
                # rather than broken.
                tasks.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _read_events(self, to_send: ObjectSendStream[bytes]) -> None:
        async with to_send:
            async for event in self.events:
                await to_send.send(encode(event))

    async def _forward(self, to_forward: ObjectReceiveStream[bytes], send: Send) -> None:
        while True:
            chunk = PING
            with anyio.move_on_after(PING_SECONDS):
                try:
                    chunk = await to_forward.receive()
                except anyio.EndOfStream:
                    return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
