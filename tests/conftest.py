"""Shared test configuration.

Tests that need an external server (PostgreSQL, Redis) use the `postgres_url` / `redis_url`
fixtures. Without the server they skip with a reason; with NNS_TEST_REQUIRE_SERVICES=1 (set by
.ci/run) a missing server is a failure instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

POSTGRES_URL = os.environ.get(
    "NNS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("NNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    return os.environ.get("NNS_TEST_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def _require(url: str, default_port: int, what: str) -> str:
    if _reachable(url, default_port):
        return url
    message = f"{what} is not reachable at {url}"
    if services_required():
        pytest.fail(f"{message} (NNS_TEST_REQUIRE_SERVICES is set)")
    pytest.skip(f"{message}; set NNS_TEST_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _require(POSTGRES_URL, 5432, "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _require(REDIS_URL, 6379, "Redis")
