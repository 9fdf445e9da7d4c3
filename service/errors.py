"""The service's exceptions: one base, a subclass per HTTP status, and one way to name a field.

Raise `ServiceError` (or a subclass) anywhere in the service, including in training
processes that never load FastAPI; service/api/errors.py turns it (and every other failure)
into the one JSON error shape:
{"error": {"type": "...", "message": "...", "details": [{"field": "...", "message": "..."}]}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

from service.schemas.errors import ErrorDetail

ERROR_TYPES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status, f"http_{status}")


class ServiceError(Exception):
    """An error the client should see, with its HTTP status and stable `type`."""

    status: int = 400
    type: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        details: Iterable[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
            self.type = type or error_type_for(status)
        elif type is not None:
            self.type = type
        self.details = list(details)
        self.headers = dict(headers or {})

    @classmethod
    def for_field(
        cls, field: str, message: str, *, summary: str | None = None, **kwargs: Any
    ) -> Self:
        """The error for one bad field: `message` in its detail, and `summary` (default
        "field: message") as the error's message. The one way to name a field at fault."""
        return cls(
            summary if summary is not None else f"{field}: {message}",
            details=[ErrorDetail(field=field, message=message)],
            **kwargs,
        )


class BadRequest(ServiceError):
    status, type = 400, "bad_request"


class Unauthorized(ServiceError):
    status, type = 401, "unauthorized"

    def __init__(self, message: str = "a valid API key is required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="nn-service"'})
        super().__init__(message, **kwargs)


class Forbidden(ServiceError):
    status, type = 403, "forbidden"


class NotFound(ServiceError):
    """Also the answer for another owner's resources: their existence is not revealed."""

    status, type = 404, "not_found"


class Conflict(ServiceError):
    status, type = 409, "conflict"


class PayloadTooLarge(ServiceError):
    status, type = 413, "payload_too_large"


class Unprocessable(ServiceError):
    """Well-formed request whose content cannot be used (e.g. a spec that does not build)."""

    status, type = 422, "validation_error"


def invalid(field: str, message: str, *, summary: str | None = None) -> Unprocessable:
    """422 naming the field at fault (shorthand for Unprocessable.for_field)."""
    return Unprocessable.for_field(field, message, summary=summary)


class RateLimited(ServiceError):
    status, type = 429, "rate_limited"

    def __init__(self, message: str, retry_after_seconds: float, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, round(retry_after_seconds)))})
        super().__init__(message, **kwargs)


class ServiceUnavailable(ServiceError):
    status, type = 503, "service_unavailable"
