"""The OpenAPI document, kept strictly valid OpenAPI 3.1.

FastAPI documents a Server-Sent Events route with `itemSchema`, a field OpenAPI 3.2 adds; in the
3.1 document it emits that is invalid (openapi-spec-validator refuses it, and converters such
as Postman's trip on it). Before 3.2 a stream's `schema` is read as the schema of each event
(schemathesis checks every event of our streams against it), so the item schema moves there;
the events' names and data are described in the response's description.
"""

from __future__ import annotations

from typing import Any


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
