"""The Playground's network drawing in Chromium against a real server: one heatmap per input
feature and hidden neuron, one link per weight, and chosen features reaching the job's spec."""

from __future__ import annotations

from typing import Any

from e2e_helpers import Server, screenshot


def attribute(page: Any, name: str) -> int:
    return int(page.get_attribute("#pg-network", f"data-{name}") or 0)


def test_squared_features_draw_the_network_and_separate_the_circle(
    page: Any, server: Server
) -> None:
    page.goto(f"{server.base}/#/playground")
    page.select_option("#pg-dataset", "circle")
    page.uncheck("#pg-features input[value='x1']")
    page.uncheck("#pg-features input[value='x2']")
    page.check("#pg-features input[value='x1^2']")
    page.check("#pg-features input[value='x2^2']")
    page.fill("#pg-samples", "300")
    page.fill("#pg-layers", "1")
    page.fill("#pg-units", "3")
    page.fill("#pg-epochs", "40")
    page.fill("#pg-batch", "2")  # slow enough for several checkpoints while it trains
    page.fill("#pg-lr", "0.03")
    page.locator("#pg-test").fill("0.3")
    page.locator("#pg-noise").fill("0")
    page.click("#pg-train")

    # Drawn from a checkpoint while the job runs.
    page.wait_for_function("Number(document.querySelector('#pg-network').dataset.epoch ?? 0) >= 2")
    assert attribute(page, "inputs") == 2
    assert attribute(page, "hidden") == 3
    assert page.locator("#pg-network canvas.nn-input").count() == 2
    assert page.locator("#pg-network canvas.nn-hidden").count() == 3
    assert page.locator("#pg-network canvas.nn-output").count() == 2
    links = 2 * 3 + 3 * 2
    assert attribute(page, "links") == links
    assert page.locator("#pg-network path.nn-link").count() == links
    widths = page.eval_on_selector_all(
        "#pg-network path.nn-link", "ls => ls.map(l => Number(l.getAttribute('stroke-width')))"
    )
    assert len(set(widths)) > 1  # thickness follows each weight's magnitude
    names = page.locator("#pg-network .nn-feature-name").all_inner_texts()
    assert names == ["x1^2", "x2^2"]

    page.wait_for_selector("#pg-badge.succeeded", timeout=120_000)
    href = page.get_attribute("#pg-status a", "href") or ""
    job_id = href.rsplit("/", 1)[-1]
    with server.client() as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["spec"]["preprocess"] == [{"type": "features", "columns": ["x1^2", "x2^2"]}]
    assert job["hyperparameters"]["test_fraction"] == 0.3
    assert job["metrics"]["val_accuracy"] >= 0.9
    page.wait_for_selector("#pg-boundary-note:has-text('final model')")
    screenshot(page, "playground-network")
