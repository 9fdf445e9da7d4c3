"""One JSON error shape for every 4xx/5xx the service answers, and its OpenAPI documentation.

Shape: {"error": {"type": "...", "message": "...", "details": [{"field": "...", "message": "..."}]}}
except under /v2, where the Open Inference Protocol defines its own: {"error": "<message>"}
(the same message, naming the field), which its clients (e.g. tritonclient) read.

`install_error_handlers` maps ServiceError (service/errors.py), FastAPI's validation errors,
HTTPExceptions (incl. router 404/405), database outages and unexpected exceptions to the same
shape; `ErrorShapeMiddleware` wraps the whole app to catch the two answers produced outside
the exception handlers (Starlette's plain-text 413 from the body-size limit, and anything
after a crash).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError, error_type_for
from service.schemas.errors import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)

# Set in the scope once an unexpected exception has been logged and answered with a JSON 500.
_HANDLED_SCOPE_KEY = "nns.unhandled_error_answered"


def error_body(type: str, message: str, details: Iterable[ErrorDetail] = ()) -> dict[str, Any]:
    return ErrorResponse.model_validate(
        {"error": {"type": type, "message": message, "details": list(details)}}
    ).model_dump()


def speaks_protocol(scope: Scope) -> bool:
    """Whether the request is to an Open Inference Protocol (/v2) route."""
    path = str(scope.get("path", ""))
    return path == "/v2" or path.startswith("/v2/")


def error_response(
    status: int,
    type: str,
    message: str,
    details: Iterable[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
    scope: Scope | None = None,
) -> Response:
    """The error answer; under /v2 (when given the request's scope) in the protocol's shape."""
    if status < 200 or status in (204, 304):  # these statuses may not carry a body
        return Response(status_code=status, headers=dict(headers or {}))
    if scope is not None and speaks_protocol(scope):
        return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))
    return JSONResponse(
        error_body(type, message, details), status_code=status, headers=dict(headers or {})
    )


# OpenAPI: pass `responses=ERROR_RESPONSES` (or error_responses(...)) on every route.
_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or revoked API key",
    403: "Not allowed for this API key",
    404: "Not found (or owned by someone else)",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Validation error; details name each field",
    429: "Rate limit exceeded; see Retry-After",
    500: "Internal error",
    503: "Service unavailable",
}


def error_responses(
    *statuses: int, model: type[BaseModel] = ErrorResponse
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries documenting the error shape (`model`) for the given statuses."""
    return {
        status: {
            "model": model,
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        }
        for status in statuses
    }


ERROR_RESPONSES = error_responses(400, 401, 404, 409, 413, 422)


def json_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Like error_responses, for routes whose success is not JSON (e.g. text/event-stream).

    FastAPI documents a `model` response under the route's own media type, so these name the
    JSON content explicitly (the ErrorResponse component is registered by the other routes).
    """
    schema = {"$ref": "#/components/schemas/ErrorResponse"}
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {"application/json": {"schema": schema}},
        }
        for status in statuses
    }


def _limit_message(scope: Scope) -> tuple[str, list[ErrorDetail]]:
    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    if isinstance(limit, int):
        return (
            f"request body is larger than the limit of {limit} bytes",
            [ErrorDetail(field="body", message=f"at most {limit} bytes")],
        )
    return "request body is too large", [ErrorDetail(field="body", message="too large")]


def _field_path(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_details(exc: RequestValidationError) -> list[ErrorDetail]:
    details = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid value"))
        context = error.get("ctx") or {}
        if error.get("type") == "json_invalid" and "error" in context:
            message = f"{message}: {context['error']}"
        details.append(ErrorDetail(field=_field_path(error.get("loc", ())), message=message))
    return details


async def service_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(
        exc.status, exc.type, exc.message, exc.details, exc.headers, scope=request.scope
    )


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    message = "invalid request"
    if details:
        message = f"invalid request: {details[0].field}: {details[0].message}"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more)"
    return error_response(422, "validation_error", message, details, scope=request.scope)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    details: list[ErrorDetail] = []
    if status == 413:
        message, details = _limit_message(request.scope)
    elif status == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        message = f"no such resource: {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return error_response(
        status, error_type_for(status), message, details, headers, scope=request.scope
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_TEMPLATE_PARAM = re.compile(r"\{[^}/]+\}")


def _allowed_methods(request: Request) -> str:
    """The methods of the resource at this path (Starlette's 405 names only one route's).

    The OpenAPI document decides which resource a path is: of the templates matching it, the
    one with the most literal characters (so /v1/models/x:predict is the predict resource,
    not a model named "x:predict"). Paths it does not document fall back to the routes.
    """
    path = request.url.path
    best: tuple[int, list[str]] | None = None
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "".join(
            "[^/]+" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}/]+\})", template)
        )
        if re.fullmatch(pattern, path):
            literal = len(_TEMPLATE_PARAM.sub("", template))
            if best is None or literal > best[0]:
                best = (literal, [m.upper() for m in operations if m.upper() in _METHODS])
    if best is not None:
        return ", ".join(m for m in _METHODS if m in best[1])
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


async def database_error_handler(request: Request, exc: Exception) -> Response:
    """The database is down, locked for too long, read-only or full: say so, don't 500."""
    assert isinstance(exc, OperationalError)
    reason = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else "unavailable"
    log.warning("database error on %s %s: %s", request.method, request.url.path, reason)
    return error_response(
        503,
        "database_unavailable",
        f"the database cannot serve this request: {reason}",
        headers={"Retry-After": "1"},
        scope=request.scope,
    )


async def data_error_handler(request: Request, exc: Exception) -> Response:
    """A value the database cannot hold (e.g. a blob over SQLite's 10^9 bytes): the
    request's fault, so a 4xx; handlers should have refused it earlier with a better one."""
    assert isinstance(exc, DataError)
    reason = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else "invalid value"
    log.warning("data error on %s %s: %s", request.method, request.url.path, reason)
    if "too big" in reason or "too large" in reason:
        return error_response(
            413, "payload_too_large", f"too large to store: {reason}", scope=request.scope
        )
    return error_response(
        422, "validation_error", f"the database cannot store this: {reason}", scope=request.scope
    )


async def integrity_error_handler(request: Request, exc: Exception) -> Response:
    """A constraint caught a race the handler's own checks missed (e.g. a duplicate name)."""
    log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        409, "conflict", "the request conflicts with existing data", scope=request.scope
    )


async def unhandled_exception_handler(request: Request, exc: Exception) -> Response:
    """Log the traceback under an id; the client gets the id, never the traceback."""
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "unhandled error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc
    )
    request.scope[_HANDLED_SCOPE_KEY] = True
    return error_response(
        500, "internal_error", f"internal error (id {error_id})", scope=request.scope
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(OperationalError, database_error_handler)
    app.add_exception_handler(IntegrityError, integrity_error_handler)
    app.add_exception_handler(DataError, data_error_handler)
    app.add_exception_handler(Exception, unhandled_exception_handler)


class ErrorShapeMiddleware:
    """Outermost ASGI wrapper that keeps the error shape where exception handlers can't.

    - Starlette's body-size limit answers 413 as text/plain outside every exception handler
      (when Content-Length announces an oversized body): replaced by the JSON shape.
    - Starlette re-raises an exception after the 500 handler answered it, so the server logs
      it a second time with its traceback; it was logged already, so it stops here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        replacing = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and _is_plain_413(message):
                replacing = True
                return
            if replacing:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    replacing = False
                    text, details = _limit_message(scope)
                    response = error_response(413, "payload_too_large", text, details, scope=scope)
                    await response(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if not scope.get(_HANDLED_SCOPE_KEY):
                raise


def _is_plain_413(message: Message) -> bool:
    if message.get("status") != 413:
        return False
    headers = dict(message.get("headers") or [])
    return not headers.get(b"content-type", b"").startswith(b"application/json")
