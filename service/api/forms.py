"""Multipart uploads read only after the caller is authenticated.

FastAPI reads `File`/`Form` parameters before it runs any dependency, so an anonymous client
could make the server spool a whole upload to disk before hearing 401. Upload routes therefore
take the `Request`, let the auth dependency run, and only then parse the form here. The
route's body limit (settings.max_upload_bytes, see service/api/routes.py) still counts every
byte as it streams in and answers 413 once the limit is passed. The form fields are validated
with a pydantic model so errors have the usual 422 shape with `body.<field>` named, and the
request body is documented for OpenAPI by hand (`multipart_body`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from service.api.bodies import body_error
from service.errors import PayloadTooLarge, invalid

FieldsT = TypeVar("FieldsT", bound=BaseModel)

#: Read uploads in chunks of this size (a second line of defence after the body limit).
CHUNK = 1 << 20


@asynccontextmanager
async def uploaded_form(
    request: Request, *, max_files: int, max_fields: int
) -> AsyncIterator[FormData]:
    """The multipart form (files spooled to temporary files), closed when the block ends."""
    form = await request.form(max_files=max_files, max_fields=max_fields)
    try:
        yield form
    finally:
        await form.close()


def form_file(form: FormData, name: str, *, required: bool) -> UploadFile | None:
    """The file part `name`; a plain text value where a file belongs is a 422."""
    value = form.get(name)
    if value is None or value == "":
        if required:
            raise invalid(
                f"body.{name}",
                "file required",
                summary=f"the multipart field {name!r} must hold a file",
            )
        return None
    if not isinstance(value, UploadFile):
        raise invalid(
            f"body.{name}",
            "expected a file",
            summary=f"the multipart field {name!r} must be a file, not a text value",
        )
    return value


def form_fields(model: type[FieldsT], form: FormData, *, exclude: tuple[str, ...]) -> FieldsT:
    """Validate the text fields of a form with `model` (file parts in `exclude` skipped)."""
    raw: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in exclude:
            continue
        if not isinstance(value, str):
            raise invalid(
                f"body.{key}",
                "expected text",
                summary=f"the multipart field {key!r} must be a text value, not a file",
            )
        if value != "":  # an empty field means "not given", as browsers send them
            raw[key] = value
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise body_error(exc) from None


async def read_upload(upload: UploadFile, limit: int, field: str) -> bytes:
    """The whole file, refusing (413) once it passes `limit` bytes."""
    if upload.size is not None and upload.size > limit:
        raise _too_large(field, limit)
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise _too_large(field, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(field: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge.for_field(
        f"body.{field}",
        f"at most {limit} bytes",
        summary=f"the uploaded file is larger than the limit of {limit} bytes",
    )


def multipart_body(
    fields: type[BaseModel], files: dict[str, str], required_files: tuple[str, ...]
) -> dict[str, Any]:
    """`openapi_extra` documenting a multipart body: file parts plus `fields`' properties."""
    schema = fields.model_json_schema()
    properties: dict[str, Any] = {
        # minLength: an empty file is refused (422 naming the part).
        name: {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "minLength": 1,
            "description": d,
        }
        for name, d in files.items()
    }
    properties.update(
        {name: _without_null(prop) for name, prop in schema.get("properties", {}).items()}
    )
    body_schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [*required_files, *schema.get("required", [])],
        # The server refuses any other part (and counts them: max_fields, max_files).
        "additionalProperties": False,
    }
    if "$defs" in schema:
        body_schema["$defs"] = schema["$defs"]
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": body_schema}},
        }
    }


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A form field cannot be null (an omitted or empty one is unset): drop the null branch."""
    branches = prop.get("anyOf")
    if not isinstance(branches, list):
        return prop
    kept = [b for b in branches if b != {"type": "null"}]
    rest = {k: v for k, v in prop.items() if k != "anyOf"}
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}
