"""Compare runs, in Chromium against a real server: tick jobs on the Jobs page, compare them
(only the settings that differ, curves overlaid)."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import Server, screenshot
from waiting import wait_until

pytestmark = pytest.mark.browser


def xor_spec(lr: float, units: int) -> dict[str, Any]:
    return {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": units, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": lr},
        "training": {"epochs": 5, "batch_size": 32, "validation_split": 0.2, "seed": 1},
    }


def test_compare_three_runs(page: Any, server: Server) -> None:
    settings = [(0.01, 4), (0.05, 4), (0.05, 8)]
    with server.client() as http:
        ids = []
        for i, (lr, units) in enumerate(settings):
            body = {"spec": xor_spec(lr, units), "dataset": "xor", "model_name": f"cmp-{i}"}
            response = http.post("/v1/jobs", json=body)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        for job_id in ids:
            wait_until(
                lambda job_id=job_id: (
                    http.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
                ),
                timeout=120,
                what=f"{job_id} to succeed",
            )

    page.goto(f"{server.base}/#/jobs")
    compare = page.locator("#jobs-compare")
    for job_id in ids:
        page.locator(f"tr[data-id='{job_id}'] .job-pick").check()
    assert compare.is_enabled()
    compare.click()
    page.wait_for_url("**/#/compare?jobs=*")

    table = page.locator("#compare-table")
    table.wait_for()
    paths = table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.path)")
    assert sorted(paths) == ["spec.layers.0.units", "spec.optimizer.lr"]
    lr_row = table.locator("tr[data-path='spec.optimizer.lr'] td")
    assert lr_row.all_inner_texts()[1:] == ["0.01", "0.05", "0.05"]
    for chart in ("#compare-loss", "#compare-acc"):
        assert page.locator(chart).get_attribute("data-series") == "3"
        page.wait_for_function(
            f"document.querySelector({chart!r}).dataset.points === String(3 * 5)"
        )
    screenshot(page, "compare-runs")
