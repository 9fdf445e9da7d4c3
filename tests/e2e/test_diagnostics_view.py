"""The job page's look inside training, in Chromium against a real server: per-layer
gradient norms over the epochs, the latest histograms, and the job's warnings."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import Server, screenshot
from waiting import wait_until

pytestmark = pytest.mark.browser


def dense(units: int, activation: str, **extra: Any) -> dict[str, Any]:
    return {"type": "dense", "units": units, "activation": activation, **extra}


def spec(layers: list[dict[str, Any]], epochs: int, loss: str) -> dict[str, Any]:
    return {
        "input_dim": 2,
        "preprocess": [{"type": "standardize"}],
        "layers": layers,
        "loss": loss,
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": epochs, "batch_size": 32, "seed": 0},
    }


def run_job(server: Server, name: str, job_spec: dict[str, Any]) -> dict[str, Any]:
    with server.client() as http:
        body = {"spec": job_spec, "dataset": "xor", "model_name": name}
        response = http.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]

        def finished() -> dict[str, Any] | None:
            state: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
            return state if state["status"] in ("succeeded", "failed", "cancelled") else None

        state = wait_until(finished, timeout=120)
        assert state["status"] == "succeeded", state
        return state


def test_gradient_norms_histograms_and_no_warning(page: Any, server: Server) -> None:
    layers = [dense(8, "tanh"), dense(8, "tanh"), dense(2, "softmax")]
    job = run_job(server, "diag-xor", spec(layers, 4, "categorical_crossentropy"))

    page.goto(f"{server.base}/#/jobs/{job['id']}")
    chart = page.locator("#chart-grad")
    page.wait_for_function("document.querySelector('#chart-grad')?.dataset.epochs === '4'")
    assert chart.get_attribute("data-series") == "3"  # one line per dense layer
    assert chart.get_attribute("data-points") == str(3 * 4)  # a point per layer per epoch
    assert "after epoch 4" in page.inner_text("#diag-hist-epoch")
    assert page.locator("#diag-histograms .hist-layer").count() == 3
    assert page.locator("#diag-histograms .hist-box[data-kind='weights'] .hist").count() == 3
    assert page.locator("#diag-histograms .hist-box[data-kind='gradients'] .hist").count() == 3
    assert page.locator("#diag-histograms .hist").first.get_attribute("data-bins") == "20"
    assert page.locator("#job-warnings li").count() == len(job["warnings"])
    screenshot(page, "job-diagnostics")


def test_a_vanishing_gradient_job_shows_its_warning(page: Any, server: Server) -> None:
    deep = [dense(16, "sigmoid", initializer={"name": "normal", "std": 0.1})] * 8
    job = run_job(server, "diag-deep", spec([*deep, dense(1, "sigmoid")], 2, "binary_crossentropy"))
    assert "vanishing_gradients" in {w["code"] for w in job["warnings"]}

    page.goto(f"{server.base}/#/jobs/{job['id']}")
    warning = page.locator("#job-warnings li[data-code='vanishing_gradients']")
    warning.wait_for()
    assert "first after epoch" in warning.inner_text()
    message = next(w for w in job["warnings"] if w["code"] == "vanishing_gradients")["message"]
    assert message in warning.inner_text()
    page.wait_for_function("document.querySelector('#chart-grad')?.dataset.epochs === '2'")
    assert page.locator("#chart-grad").get_attribute("data-series") == "9"
    screenshot(page, "job-warnings")


def test_diagnostics_follow_a_running_job(page: Any, server: Server) -> None:
    layers = [dense(8, "tanh"), dense(2, "softmax")]
    live = spec(layers, 40, "categorical_crossentropy")
    live["training"]["batch_size"] = 1  # slow enough to open the page while it trains
    with server.client() as http:
        body = {"spec": live, "dataset": "xor", "model_name": "diag-live"}
        response = http.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job = response.json()

    page.goto(f"{server.base}/#/jobs/{job['id']}")
    page.wait_for_function("Number(document.querySelector('#chart-grad')?.dataset.epochs) >= 1")
    first = int(page.locator("#chart-grad").get_attribute("data-epochs") or 0)
    page.wait_for_function(
        f"Number(document.querySelector('#chart-grad').dataset.epochs) > {first}"
    )
    page.wait_for_selector("#job-status.succeeded", timeout=120_000)
    # Stored pages, then the stream: every epoch exactly once, for both layers.
    page.wait_for_function("document.querySelector('#chart-grad').dataset.epochs === '40'")
    assert page.locator("#chart-grad").get_attribute("data-points") == str(2 * 40)
    assert "after epoch 40" in page.inner_text("#diag-hist-epoch")
