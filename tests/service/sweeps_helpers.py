"""Helpers for the sweep tests: waiting on a sweep through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from jobs_helpers import poll_resource

TERMINAL_SWEEP = {"succeeded", "failed", "cancelled"}


def finished(sweep: dict[str, Any]) -> bool:
    return sweep["status"] in TERMINAL_SWEEP


async def wait_for_sweep(
    client: httpx.AsyncClient,
    sweep_id: str,
    until: Callable[[dict[str, Any]], Any],
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Poll GET /v1/sweeps/{id} until `until(sweep)` holds; returns the sweep."""
    return await poll_resource(client, f"/v1/sweeps/{sweep_id}", "sweep", until, timeout)
