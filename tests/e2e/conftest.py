"""Browser tests: Playwright drives Debian's Chromium against a real `nn-service serve`.

Without /usr/bin/chromium or the playwright package these skip with a reason; with
NNS_TEST_REQUIRE_SERVICES=1 (set by .ci/run) that is a failure instead, as in
tests/environment.py. Playwright's own browser downloads are never used (no `playwright
install`). With NNS_SCREENSHOTS=<dir> the tests save a PNG of each view there
(docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import Server
from environment import missing
from server_process import ServerProcess
from shared_data import SMS_SPAM, SMS_SPAM_MISSING

CHROMIUM = Path(os.environ.get("NNS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module. Not per session: Playwright's sync API keeps an
    asyncio loop running in this thread while it is started, which would break the anyio
    tests that run after these in the same session."""
    if importlib.util.find_spec("playwright") is None:
        missing("the playwright package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.is_file():
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`nn-service serve` on 127.0.0.1 with a fresh data dir, for one test module."""
    process = ServerProcess(
        tmp_path_factory.mktemp("serve"), checkpoint_every=2, max_jobs_per_key=8
    )
    process.start()
    try:
        yield Server(base=process.base, key=process.key, data_dir=process.data_dir)
    finally:
        process.stop()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh page whose localStorage already holds the admin key; fails the test on any
    JavaScript error or console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.add_init_script(f"localStorage.setItem('nns.apiKey', {server.key!r})")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        context.close()
    # Chromium logs every 4xx fetch as a console error; the views handle those themselves.
    errors = [e for e in errors if not e.startswith("Failed to load resource")]
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def sms_spam_path() -> Path:
    """The SMS Spam Collection (never committed, see shared_data); skips or fails without it."""
    if not SMS_SPAM.is_file():
        missing(SMS_SPAM_MISSING)
    return SMS_SPAM
