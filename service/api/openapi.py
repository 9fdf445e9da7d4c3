"""The OpenAPI document, kept strictly valid OpenAPI 3.1.

FastAPI documents a Server-Sent Events route with `itemSchema`, a field OpenAPI 3.2 adds; in the
3.1 document it emits that is invalid (openapi-spec-validator refuses it, and converters such
as Postman's trip on it). Before 3.2 a stream's `schema` is read as the schema of each event
(schemathesis checks every event of our streams against it), so the item schema moves there;
the events' names and data are described in the response's description.

Routes that read their own JSON body document it with read_body, which names the body's
model; add_read_bodies then puts that model's schema in components like any other.
"""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import Schema
from pydantic import BaseModel


def strict_openapi_31(document: dict[str, Any]) -> dict[str, Any]:
    """Turn every media type's `itemSchema` into its 3.1 `schema` (in place)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    if "itemSchema" in media:
                        media["schema"] = media.pop("itemSchema")
    return document


_COMPONENTS = "#/components/schemas/"
#: Models of the JSON bodies that routes read themselves (see service/api/bodies.py).
#: FastAPI puts only its body parameters' models in components; add_read_bodies adds these.
_READ_BODIES: dict[str, type[BaseModel]] = {}


def read_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON body a route reads itself as `model`, referenced
    from components just as FastAPI documents a body parameter."""
    _READ_BODIES[model.__name__] = model
    schema = {"$ref": f"{_COMPONENTS}{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def path_parameters(*names: str) -> dict[str, Any]:
    """`openapi_extra` documenting string path parameters a route reads itself from
    `request.path_params`, as FastAPI documents a `name: str` parameter."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "title": name.replace("_", " ").title()},
            }
            for name in names
        ]
    }


def add_read_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """Put the schemas of read_body's models in the document's components (in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _READ_BODIES.items():
        schema = model.model_json_schema(ref_template=f"{_COMPONENTS}{{model}}")
        found = {**schema.pop("$defs", {}), name: schema}
        # Encoded as FastAPI encodes the document: no null defaults, bounds as numbers.
        schemas.update({key: _encoded(value) for key, value in found.items()})
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def _encoded(schema: dict[str, Any]) -> Any:
    return jsonable_encoder(Schema.model_validate(schema), by_alias=True, exclude_none=True)
