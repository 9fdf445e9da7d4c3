"""The learning-rate range test from the dashboard, in Chromium against a real server: the
Playground's button finds a rate and applies it; the job page runs one of its job's spec."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import Server

pytestmark = pytest.mark.browser


def test_playground_finds_and_applies_a_learning_rate(page: Any, server: Server) -> None:
    page.goto(f"{server.base}/#/playground")
    page.select_option("#pg-dataset", "gauss")
    page.select_option("#pg-optimizer", "sgd")
    page.click("#pg-find-lr")

    page.wait_for_selector("#lr-suggested", timeout=90_000)
    assert page.locator("#pg-lr-range svg.lr-curve polyline").count() == 1
    shown = page.inner_text("#lr-suggested")
    suggested = float(shown)
    assert 1e-5 <= suggested <= 10
    page.click("#lr-apply")
    assert float(page.input_value("#pg-lr")) == pytest.approx(max(1e-4, suggested), rel=0.05)

    # The job page of that range test shows the same result.
    page.click("#pg-lr-range a[href^='#/jobs/']")
    page.wait_for_selector("#job-lr-range #lr-suggested")
    assert page.inner_text("#job-lr-range #lr-suggested") == shown
