"""The service's name and release version (pyproject.toml's, read from the installed package)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

NAME = "nn-service"


@cache
def release() -> str:
    """The installed release, e.g. "0.1.0"; "0.0.0" when running from an uninstalled checkout."""
    try:
        return version(NAME)
    except PackageNotFoundError:
        return "0.0.0"
