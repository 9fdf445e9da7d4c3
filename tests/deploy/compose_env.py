"""Compose's variable interpolation and .env files, as the Compose Specification defines them.

No Compose implementation runs here, so the tests apply the specification's rules themselves
(https://github.com/compose-spec/compose-spec/blob/main/12-interpolation.md): `$VAR`, `${VAR}`,
`${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
`${VAR+alt}`, and `$$` for a literal `$`. That is what turns docker/compose.yaml plus
docker/.env into what the containers get, so properties such as "published on 127.0.0.1 by
default" are checked on the result, and "refuses to start without a password" on the error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_PATTERN = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A `${VAR:?message}` whose variable is unset (or empty): Compose stops with the message."""


def _substitute(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        present = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in ("-", ":-"):
            return value if present and value is not None else arg
        if op in ("?", ":?"):
            if not present or value is None:
                raise MissingVariable(f"required variable {name} is missing a value: {arg}")
            return value
        if op in ("+", ":+"):
            return arg if present else ""
        return value or ""

    return _PATTERN.sub(replace, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """`node` (parsed YAML) with every string value interpolated from `env`."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    if isinstance(node, str):
        return _substitute(node, env)
    return node


def variables(text: str) -> set[str]:
    """The names of the variables `text` reads."""
    return {
        m.group("braced") or m.group("named")
        for m in _PATTERN.finditer(text)
        if not m.group("escaped")
    }


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a Compose .env file (comments, blank lines and `export ` skipped)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        assert sep, f"{path}: not KEY=VALUE: {raw!r}"
        values[key.strip()] = value.strip().strip("'\"")
    return values
