"""/docs (Swagger UI) and /redoc render from the server alone: every request that would leave
127.0.0.1 (a CDN script, a web font, a logo) is aborted, recorded and fails the test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from e2e_helpers import Server

pytestmark = pytest.mark.browser

LOCAL_HOSTS = {"127.0.0.1"}


class OfflinePage:
    """A page on which every non-local request is aborted; remembers what it asked for."""

    def __init__(self, context: Any) -> None:
        self.outside: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        context.route("**/*", self._route)
        self.tab = context.new_page()
        self.tab.set_default_timeout(30_000)
        self.tab.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.tab.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        self.tab.on(
            "response",
            lambda response: (
                self.failed.append(f"{response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlparse(url).scheme in ("data", "blob") or urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("internetdisconnected")

    def wait(self, locator: Any) -> None:
        """Wait for `locator` to show; a page that never renders names what it asked for."""
        try:
            locator.wait_for()
        except Exception as exc:
            raise AssertionError(
                f"not rendered; requests that left 127.0.0.1: {self.outside}, "
                f"failed: {self.failed}, errors: {self.errors}"
            ) from exc

    def assert_stayed_local(self) -> None:
        assert not self.outside, f"requests left 127.0.0.1: {self.outside}"
        assert not self.failed, f"local requests failed: {self.failed}"
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"


@pytest.fixture
def offline(browser: Any) -> Iterator[OfflinePage]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield OfflinePage(context)
    finally:
        context.close()


def test_swagger_ui_renders_offline(offline: OfflinePage, server: Server) -> None:
    page = offline.tab
    page.goto(f"{server.base}/docs")
    submit = page.locator('.opblock-post .opblock-summary-path[data-path="/v1/jobs"]')
    offline.wait(submit)
    predict = page.locator(
        '.opblock-post .opblock-summary-path[data-path="/v1/models/{name}:predict"]'
    )
    assert predict.count() == 1
    offline.wait(page.locator("button.authorize"))  # the security schemes were read too
    errors = page.locator(".errors-wrapper")  # Swagger UI's list of problems with the document
    assert errors.count() == 0, errors.inner_text()

    submit.click()  # an operation opens with its documented body and responses
    offline.wait(page.locator(".opblock-post.is-open .responses-table").first)
    offline.assert_stayed_local()


def test_redoc_renders_offline(offline: OfflinePage, server: Server) -> None:
    page = offline.tab
    page.goto(f"{server.base}/redoc")
    # ReDoc renders each operation as a section: its summary as a heading and, in the right
    # panel, its method and path.
    offline.wait(page.locator("h2", has_text="Submit Job").first)
    endpoint = page.locator("button", has=page.locator(".http-verb.post")).filter(
        has_text="/v1/models/{name}:predict"
    )
    offline.wait(endpoint.first)
    assert page.locator("button", has_text="/v1/jobs/{job_id}/events").count() == 1
    assert page.get_by_text("Something went wrong").count() == 0
    offline.assert_stayed_local()
