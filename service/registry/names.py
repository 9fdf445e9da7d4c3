"""Rules for model names and aliases, and how user-given names are shown in messages."""

from __future__ import annotations

import re

from service.errors import Unprocessable

#: Names of models created through the API (they appear in URLs and file names); the same
#: rule as a training job's model_name, so a trained model can also receive uploads.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
#: Aliases start with a letter, so a version reference is never both a number and an alias.
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
#: Means "the highest version"; cannot be used as an alias.
LATEST = "latest"
#: Version numbers are 32-bit in the database; larger ones cannot exist.
MAX_VERSION = 2**31 - 1


def queryable(text: str, max_length: int = 1000) -> bool:
    """Whether `text` can be compared in SQL at all: Postgres refuses NUL characters in
    text parameters with an error, and such a name can never have been stored anyway."""
    return "\x00" not in text and len(text) <= max_length


def shown(text: str) -> str:
    """A user-given name cut to a length fit for an error message."""
    return text if len(text) <= 80 else text[:77] + "..."


def check_model_name(name: str) -> None:
    # "." and ".." would be rewritten as URL path segments.
    if not MODEL_NAME_RE.fullmatch(name) or set(name) == {"."}:
        raise Unprocessable.for_field(
            "name",
            "invalid model name",
            summary=f"invalid model name {shown(name)!r}: 1-64 characters from letters, "
            "digits, '.', '_' and '-', not only dots",
        )


def check_alias(alias: str) -> None:
    if alias == LATEST or not ALIAS_RE.fullmatch(alias):
        raise Unprocessable.for_field(
            "alias",
            "invalid alias",
            summary=f"invalid alias {shown(alias)!r}: 1-64 characters from letters, digits, "
            f"'_' and '-', starting with a letter, and not {LATEST!r}",
        )


def version_ref(version: int | None, alias: str | None) -> int | str | None:
    """The one reference a request may carry: a version number or an alias, not both."""
    if version is not None and alias is not None:
        raise Unprocessable.for_field(
            "body.alias", "conflicts with version", summary="give either version or alias, not both"
        )
    return version if version is not None else alias
