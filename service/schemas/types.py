"""Field types shared by the request schemas."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field


def _whole_float_to_int(value: Any) -> Any:
    """2.0 -> 2: JSON Schema counts a number without a fraction as an integer, so must we."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Put after an integer's Field(strict=True, ...) constraints: a strict integer that also
#: accepts 2.0 (e.g. Annotated[int, Field(strict=True, ge=1), WHOLE]).
WHOLE = BeforeValidator(_whole_float_to_int)

#: A model version number in a JSON body: a strict integer (no booleans, no numeric strings)
#: that also accepts 2.0, as the "integer" the OpenAPI document promises does.
#: (The constraints come first, so the OpenAPI document shows them as minimum/maximum.)
VersionNumber = Annotated[
    int,
    Field(strict=True, ge=1, le=2**31 - 1),
    WHOLE,
]

#: A decision threshold: the probability at or above which a binary classifier answers the
#: positive class.
Threshold = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]

#: One numeric instance as the predictor reads it: a number (one-input models), a row of
#: numbers, or a 2-D array such as an image (flattened).
NUMERIC_INSTANCE: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "array", "items": {"type": "number"}},
        {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
    ]
}


def numeric_instances(schema: dict[str, Any]) -> None:
    """json_schema_extra: the items of `instances` are numeric instances.

    Validation stays `list[Any]` (the predictor checks the cells in one C-speed pass, far
    cheaper than pydantic's union per cell); the document states the same rule."""
    schema["items"] = NUMERIC_INSTANCE


def numeric_or_text_instances(schema: dict[str, Any]) -> None:
    """json_schema_extra: `instances` holds only numeric instances, or only strings (text)."""
    schema.pop("items", None)
    schema["anyOf"] = [
        {"items": NUMERIC_INSTANCE},
        {"items": {"type": "string"}},
    ]
