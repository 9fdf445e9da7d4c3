"""What a test run may use from the machine, and the switches that change it.

- NNS_TEST_REQUIRE_SERVICES=1 (set by .ci/run): a missing server (PostgreSQL, Redis), program
  (redis-server, Chromium) or package (playwright) fails the tests that need it instead of
  skipping them, so CI can never pass by skipping.
- NNS_TEST_ALL_BACKENDS=1 (set by .ci/run): every test taking `database_url` runs on PostgreSQL
  as well as on SQLite. Without it they run on SQLite, and on PostgreSQL too only when the
  difference between the backends is their point (marked `both_backends`).
- NNS_TEST_POSTGRES_URL / NNS_TEST_REDIS_URL: the servers to use instead of the local defaults.

(tests/ is on sys.path through tests/conftest.py, so every test module can import this.)
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn
from urllib.parse import urlparse

import pytest
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "NNS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("NNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

INSTALL_POSTGRES = (
    "install and start a PostgreSQL server (e.g. apt-get install postgresql) with a database "
    "`test` that user postgres may use without a password, or point NNS_TEST_POSTGRES_URL at one"
)
INSTALL_REDIS = (
    "install and start a Redis server (e.g. apt-get install redis-server), "
    "or point NNS_TEST_REDIS_URL at one"
)


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")


def services_required() -> bool:
    return _flag("NNS_TEST_REQUIRE_SERVICES")


def all_backends() -> bool:
    return _flag("NNS_TEST_ALL_BACKENDS")


def missing(message: str) -> NoReturn:
    """Skip for something missing (saying what to install or run); with
    NNS_TEST_REQUIRE_SERVICES=1 fail instead."""
    if services_required():
        pytest.fail(f"{message} (NNS_TEST_REQUIRE_SERVICES is set)")
    pytest.skip(f"{message}; set NNS_TEST_REQUIRE_SERVICES=1 to make this a failure")


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def require_server(url: str, default_port: int, what: str, how: str) -> str:
    """`url` if its server answers, else skip (or fail) saying `how` to get one."""
    if not reachable(url, default_port):
        shown = make_url(url).render_as_string(hide_password=True)
        missing(f"{what} is not reachable at {shown}: {how}")
    return url
