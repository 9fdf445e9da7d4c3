"""Helpers for the browser tests (a uniquely named module: test dirs have no __init__)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Server:
    base: str
    key: str
    data_dir: Path

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60)


def screenshot(page: Any, name: str) -> None:
    """Save a PNG of the page as <NNS_SCREENSHOTS>/<name>.png when that variable is set."""
    directory = os.environ.get("NNS_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)
