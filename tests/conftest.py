"""Shared test configuration (the switches are described in tests/environment.py).

Tests that need an external server (PostgreSQL, Redis) use the `postgres_url` / `redis_url`
fixtures. Without the server they skip with a reason naming what to install; with
NNS_TEST_REQUIRE_SERVICES=1 (set by .ci/run) a missing server is a failure instead.

Tests taking `database_url` (tests/service/conftest.py) run on SQLite; on PostgreSQL as well
only when the difference between the backends is their point (marked `both_backends`), or all
of them with NNS_TEST_ALL_BACKENDS=1 (set by .ci/run). Tests written for PostgreSQL alone (the
scale-out path, row locks) take `postgres_url` and run whenever it is reachable.
"""

from __future__ import annotations

import pytest
from environment import (
    INSTALL_POSTGRES,
    INSTALL_REDIS,
    POSTGRES_URL,
    REDIS_URL,
    all_backends,
    require_server,
)


def pytest_report_header() -> str:
    if all_backends():
        return "database backends: every database_url test on SQLite and on PostgreSQL"
    return (
        "database backends: database_url tests on SQLite, and on PostgreSQL only if marked "
        "both_backends (NNS_TEST_ALL_BACKENDS=1: all of them)"
    )


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_server(POSTGRES_URL, 5432, "PostgreSQL", INSTALL_POSTGRES)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_server(REDIS_URL, 6379, "Redis", INSTALL_REDIS)


# The fuzz tests count their requests (tests/service/fuzz). Under pytest-xdist each worker
# sends its counts back with its output, and the controller prints their sum.
FUZZ_COUNTS = pytest.StashKey[dict[str, int]]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: pytest.Item, error: object) -> None:
    counts = getattr(node, "workeroutput", {}).get("fuzz_requests_by_status", {})
    total = node.config.stash.setdefault(FUZZ_COUNTS, {})
    for status, n in counts.items():
        total[status] = total.get(status, 0) + n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = terminalreporter.config.stash.get(FUZZ_COUNTS, {})
    if counts:
        classes = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        terminalreporter.write_line(
            f"schemathesis fuzzing: {sum(counts.values())} requests ({classes})"
        )
