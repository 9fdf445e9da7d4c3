"""Helpers for the sweep tests: waiting on a sweep through the API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

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
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/v1/sweeps/{sweep_id}")
        assert response.status_code == 200, response.text
        sweep: dict[str, Any] = response.json()
        if until(sweep):
            return sweep
        assert time.monotonic() < deadline, f"sweep never reached the condition: {sweep}"
        await asyncio.sleep(0.1)
