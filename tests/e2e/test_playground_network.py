"""The Playground's network drawing in Chromium against a real server: one heatmap per input
feature and hidden neuron, one link per weight, and chosen features reaching the job's spec;
and a regression set (plane) trained with one identity output on MSE, its output drawn on a
diverging scale and its test loss shown."""

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


# Reads a canvas pixel at plane point (x, y) (the drawings span [-6, 6] on both axes).
PIXEL_AT = """([selector, points]) => {
  const c = document.querySelector(selector);
  const ctx = c.getContext("2d");
  return points.map(([x, y]) => {
    const i = Math.min(c.width - 1, Math.floor(((x + 6) / 12) * c.width));
    const j = Math.min(c.height - 1, Math.floor(((6 - y) / 12) * c.height));
    return Array.from(ctx.getImageData(i, j, 1, 1).data.slice(0, 3));
  });
}"""


def blue(rgb: list[int]) -> bool:
    return rgb[2] > rgb[0] + 40


def orange(rgb: list[int]) -> bool:
    return rgb[0] > rgb[2] + 40


def test_plane_regression_draws_values_and_shows_the_test_loss(page: Any, server: Server) -> None:
    page.goto(f"{server.base}/#/playground")
    page.select_option("#pg-dataset", "plane")
    assert page.get_attribute("#pg-boundary", "data-mode") == "regression"
    assert page.get_attribute("#pg-boundary", "data-drawn") == "points"
    assert not page.locator("#pg-acc").is_visible()  # no accuracy for a regression
    # A sweep from here judges trials by val_loss (there is no accuracy to maximize).
    assert page.input_value("#pg-sweep-objective") == "val_loss"
    page.select_option("#pg-dataset", "circle")
    assert page.input_value("#pg-sweep-objective") == "val_accuracy"
    page.select_option("#pg-dataset", "plane")
    page.fill("#pg-samples", "300")
    page.fill("#pg-layers", "1")
    page.fill("#pg-units", "4")
    page.fill("#pg-epochs", "40")
    page.fill("#pg-batch", "2")  # slow enough for several checkpoints while it trains
    page.fill("#pg-lr", "0.03")
    page.locator("#pg-noise").fill("0")
    page.click("#pg-train")

    page.wait_for_function("Number(document.querySelector('#pg-network').dataset.epoch ?? 0) >= 2")
    assert page.get_attribute("#pg-network", "data-output") == "regression"
    assert page.locator("#pg-network canvas.nn-output").count() == 1

    page.wait_for_selector("#pg-badge.succeeded", timeout=120_000)
    page.wait_for_selector("#pg-boundary-note:has-text('final model')")
    href = page.get_attribute("#pg-status a", "href") or ""
    with server.client() as client:
        job = client.get(f"/v1/jobs/{href.rsplit('/', 1)[-1]}").json()
    assert job["dataset"] == "plane"
    assert job["spec"]["loss"] == "mse"
    output = job["spec"]["layers"][-1]  # normalised: every field spelled out
    assert (output["units"], output["activation"]) == (1, "identity")

    # The test loss is the figure shown, the very one stored with the job.
    page.wait_for_selector("#pg-test-loss", state="visible")
    shown = float(page.inner_text("#pg-test-loss-value"))
    assert shown == round(job["test_metrics"]["loss"], 4)
    assert shown < 0.05  # y = (x1 + x2) / 10 is easy

    # The output heatmap is the plane's values: blue (+) top right, orange (-) bottom left.
    assert page.get_attribute("#pg-boundary", "data-drawn") == "outputs"
    high, low = page.evaluate(PIXEL_AT, ["#pg-boundary", [[4.5, 4.5], [-4.5, -4.5]]])
    assert blue(high) and orange(low), (high, low)
    # So is the output neuron's own heatmap, on the same fixed [-1, 1] scale.
    selector = "#pg-network canvas.nn-output"
    high, low = page.evaluate(PIXEL_AT, [selector, [[5, 5], [-5, -5]]])
    assert blue(high) and orange(low), (high, low)
    assert page.locator("#pg-acc").is_hidden()
    screenshot(page, "playground-regression")
