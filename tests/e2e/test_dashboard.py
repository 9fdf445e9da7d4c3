"""The dashboard in Chromium against a real server: jobs, a job page, playground, models."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import Server, screenshot
from waiting import wait_until

pytestmark = pytest.mark.browser


def xor_spec(epochs: int, batch_size: int = 16, lr: float = 0.05) -> dict[str, Any]:
    return {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": lr},
        "training": {"epochs": epochs, "batch_size": batch_size, "validation_split": 0.2},
    }


def submit(server: Server, model_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    with server.client() as http:
        body = {"spec": spec, "dataset": "xor", "model_name": model_name}
        response = http.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job: dict[str, Any] = response.json()
        return job


def points(page: Any, selector: str) -> int:
    """How many points the chart on this canvas has drawn."""
    return int(page.locator(selector).get_attribute("data-points") or 0)


def wait_points(page: Any, selector: str, condition: str) -> None:
    """Wait until the chart on this canvas has drawn `condition` points (e.g. ">= 2"); the
    canvas may not exist yet, because a view renders only after its first fetch."""
    page.wait_for_function(
        f"Number(document.querySelector({selector!r})?.dataset.points ?? 0) {condition}"
    )


def test_playground_trains_and_draws_curve_and_boundary(page: Any, server: Server) -> None:
    page.goto(f"{server.base}/#/playground")
    page.select_option("#pg-dataset", "circle")
    page.fill("#pg-epochs", "30")
    page.fill("#pg-batch", "1")  # slow enough to see several checkpoints while it trains
    page.fill("#pg-lr", "0.003")  # steady at batch 1
    page.click("#pg-train")

    wait_points(page, "#pg-loss", ">= 4")
    first = points(page, "#pg-loss")
    wait_points(page, "#pg-loss", f"> {first + 4}")
    # The boundary is redrawn from checkpoints while training, then from the final model.
    page.wait_for_selector("#pg-boundary-note:has-text('checkpoint after epoch')")
    page.wait_for_selector("#pg-boundary-note:has-text('final model')", timeout=90_000)
    page.wait_for_selector("#pg-badge.succeeded")
    assert points(page, "#pg-loss") == 60  # train and validation loss for all 30 epochs
    assert "epoch 30 / 30" in page.inner_text("#pg-epoch")
    # The progress bar's CSS transition to its full width has ended (getAnimations() counts
    # the transitions still running, after applying any pending style change).
    page.wait_for_function("document.querySelector('#pg-bar').getAnimations().length === 0")
    screenshot(page, "playground")


def test_jobs_list_and_live_job_page(page: Any, server: Server) -> None:
    job = submit(server, "xor-live", xor_spec(epochs=60, batch_size=1, lr=0.01))
    page.goto(f"{server.base}/#/jobs")
    row = page.locator(f"tr[data-id='{job['id']}']")
    row.wait_for()
    row.click()
    page.wait_for_url(f"**/#/jobs/{job['id']}")

    wait_points(page, "#chart-loss", ">= 2")
    early = points(page, "#chart-loss")
    page.wait_for_selector("#job-progress:has-text('left')")  # the ETA while running
    wait_points(page, "#chart-loss", f"> {early + 6}")
    page.wait_for_selector("#job-status.succeeded", timeout=120_000)
    assert points(page, "#chart-loss") == 120 and points(page, "#chart-acc") == 120
    assert "epoch 60 / 60" in page.inner_text("#job-progress")
    page.wait_for_selector("#job-outcome:has-text('xor-live v1')")
    assert page.locator("#job-cancel").is_disabled()
    screenshot(page, "job")

    page.goto(f"{server.base}/#/jobs")
    page.locator(f"tr[data-id='{job['id']}'] .badge.succeeded").wait_for()
    screenshot(page, "jobs")

    # A batch prediction with that version is listed as a batch, with its result to download.
    with server.client() as http:
        batch = http.post("/v1/batch-predictions", json={"model": "xor-live", "dataset": "xor"})
        assert batch.status_code == 202, batch.text
    batch_row = page.locator(f"tr[data-id='{batch.json()['id']}'][data-kind='batch_predict']")
    batch_row.locator(".badge.kind-batch_predict").wait_for()
    link = batch_row.locator("a.batch-download")
    link.wait_for(timeout=60_000)  # the list refreshes while the batch runs
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".csv")


def test_cancel_and_failure_reason(page: Any, server: Server) -> None:
    job = submit(server, "xor-cancel", xor_spec(epochs=200, batch_size=1, lr=0.01))
    page.goto(f"{server.base}/#/jobs/{job['id']}")
    page.wait_for_selector("#job-status.running")
    page.click("#job-cancel")
    page.wait_for_selector("#job-status.cancelled", timeout=60_000)
    page.wait_for_selector("#job-outcome:has-text('Cancelled')")

    diverging = xor_spec(epochs=20)
    diverging["layers"][0]["activation"] = "relu"
    diverging["optimizer"] = {"name": "sgd", "lr": 1e9}
    failing = submit(server, "xor-diverge", diverging)
    page.goto(f"{server.base}/#/jobs/{failing['id']}")
    page.wait_for_selector("#job-status.failed", timeout=60_000)
    assert "diverged" in page.inner_text("#job-outcome")


def test_models_versions_aliases_and_compare(page: Any, server: Server) -> None:
    for epochs in (8, 16):
        job = submit(server, "xor-models", xor_spec(epochs=epochs))
        with server.client() as http:
            wait_until(
                lambda: (
                    http.get(f"/v1/jobs/{job['id']}").json()["status"]  # noqa: B023
                    in ("succeeded", "failed")
                ),
                60,
                f"job {job['id']} to finish",
            )

    page.goto(f"{server.base}/#/models")
    page.click("a[href='#/models/xor-models']")
    page.wait_for_selector("text=Model xor-models")
    page.click("button[data-promote='1']")
    page.wait_for_selector("tr:has-text('v1') .badge.alias:has-text('production')")
    page.click("button[data-promote='2']")
    page.wait_for_selector("tr:has-text('v2') .badge.alias:has-text('production')")
    with server.client() as http:
        assert http.get("/v1/models/xor-models").json()["aliases"] == {"production": 2}

    # Compare: A = v2 (16 epochs), B = v1 (8 epochs), train and validation curves of both.
    wait_points(page, "#cmp-loss", "== 48")
    assert points(page, "#cmp-acc") == 48
    screenshot(page, "models")
