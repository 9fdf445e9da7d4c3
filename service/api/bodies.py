"""Request bodies a route reads itself, refused the way FastAPI refuses its own.

Most routes declare their body as a parameter and let FastAPI parse and validate it. A few
read it themselves: multipart forms, V2's binary tensors, the MNIST route's two media types,
and `:predict`, the hot path, where FastAPI's body handling (Python's JSON parser, then
validation of the parsed dict through its parameter machinery) costs more than predicting.
Their errors keep FastAPI's shape: 422 with each field under `body`.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.errors import ServiceError, invalid

M = TypeVar("M", bound=BaseModel)


def body_error(exc: ValidationError) -> RequestValidationError:
    """A model's validation errors as FastAPI reports a body's: each field under `body`."""
    errors = exc.errors(include_url=False)
    return RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in errors])


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`, parsed and validated in one pass by pydantic.

    Accepted as FastAPI accepts a JSON body: no Content-Type, application/json, or any
    application/*+json. Like Python's parser, pydantic's reads NaN and Infinity as floats
    (routes refuse them by field) and keeps the last of duplicate keys."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media and media != "application/json" and not _json_suffix(media):
        raise ServiceError.for_field(
            "content-type",
            "unsupported",
            summary=f"unsupported content type {media!r}: send the body as application/json",
            status=415,
        )
    raw = await request.body()
    if not raw:
        raise invalid("body", "is empty; send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise invalid("body", f"is not valid JSON ({first['ctx']['error']})") from None
        raise body_error(exc) from None


def _json_suffix(media: str) -> bool:
    return media.startswith("application/") and media.endswith("+json")
