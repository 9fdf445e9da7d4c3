"""The sweeps dashboard in Chromium against a real server: start a sweep from the Playground,
watch it to the end (parallel coordinates, curves, importances, trials table), promote its
best version to production, and cancel a running sweep from its page."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import Server, screenshot
from waiting import wait_until

pytestmark = pytest.mark.browser

TERMINAL = {"succeeded", "failed", "cancelled"}


def get_sweep(server: Server, sweep_id: str) -> dict[str, Any]:
    with server.client() as http:
        response = http.get(f"/v1/sweeps/{sweep_id}")
        assert response.status_code == 200, response.text
        sweep: dict[str, Any] = response.json()
        return sweep


def matches(shown: str, value: float | None) -> bool:
    """Whether the table's text is the trial's objective (fmt(value) in api.js: 4 decimals)."""
    return shown == "\u2013" if value is None else abs(float(shown) - value) <= 5e-5 + 1e-12


def test_sweep_started_from_the_playground_runs_to_the_end(page: Any, server: Server) -> None:
    page.goto(f"{server.base}/#/playground")
    page.select_option("#pg-dataset", "xor")
    page.fill("#pg-samples", "200")
    page.fill("#pg-layers", "1")
    page.fill("#pg-units", "4")
    page.fill("#pg-lr", "0.03")
    page.click("#pg-sweep summary")
    # The defaults follow the Playground's settings.
    assert page.input_value("#pg-sweep-name") == "playground-xor-sweep"
    assert float(page.input_value("#pg-sweep-lr-low")) == pytest.approx(0.003)
    assert float(page.input_value("#pg-sweep-lr-high")) == pytest.approx(0.3)
    page.fill("#pg-sweep-epochs", "6")
    page.fill("#pg-sweep-units-low", "2")
    page.fill("#pg-sweep-units-high", "8")
    page.fill("#pg-sweep-trials", "3")
    page.fill("#pg-sweep-parallel", "2")
    page.select_option("#pg-sweep-pruner", "none")  # every trial completes: importances exist
    page.click("#pg-sweep-start")

    page.wait_for_url("**/#/sweeps/sweep_*")
    sweep_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#sweep-status[data-status='succeeded']", timeout=120_000)

    sweep = get_sweep(server, sweep_id)
    assert sweep["status"] == "succeeded", sweep
    # The Playground's network and data, with the form's search space.
    assert sweep["dataset"] == "xor" and sweep["model_name"] == "playground-xor-sweep"
    assert sweep["spec"]["layers"][0]["units"] == 4
    assert sweep["spec"]["training"]["epochs"] == 6
    assert sweep["objective"] == {"metric": "val_accuracy", "direction": "maximize"}
    assert sweep["search_space"] == {
        "optimizer.lr": {"type": "float", "low": 0.003, "high": 0.3, "log": True},
        "layers[0].units": {"type": "int", "low": 2, "high": 8},
    }
    trials = sweep["trials"]
    assert len(trials) == 3 and {t["state"] for t in trials} == {"complete"}

    # Parallel coordinates: two parameter axes plus the objective, one line per trial.
    svg = page.locator("#sweep-parallel")
    assert svg.get_attribute("data-axes") == "3"
    assert svg.get_attribute("data-lines") == "3"
    assert page.locator("#sweep-parallel polyline.pc-line").count() == 3
    # The curves: one series per trial, an objective point for each of its 6 epochs.
    curves = page.locator("#sweep-curves")
    assert curves.get_attribute("data-series") == "3"
    assert curves.get_attribute("data-points") == str(3 * 6)

    # The table matches the API's trials.
    rows = page.locator("#sweep-trials tbody tr[data-number]")
    assert rows.count() == 3
    for trial in trials:
        row = page.locator(f"#sweep-trials tbody tr[data-number='{trial['number']}']")
        assert row.locator(".badge").inner_text() == trial["state"]
        assert row.locator("td[data-param='layers[0].units']").inner_text() == str(
            trial["params"]["layers[0].units"]
        )
        assert matches(row.locator(".trial-value").inner_text(), trial["value"])
        assert row.locator("a").get_attribute("href") == f"#/jobs/{trial['job_id']}"

    # Importances, one bar per searched parameter.
    assert sweep["importances"] is not None
    for name in sweep["importances"]:
        assert page.locator(f"#sweep-importances .imp-name[data-param='{name}']").count() == 1

    best = sweep["best_trial"]
    assert page.get_attribute("#sweep-best-trial", "data-number") == str(best["number"])
    assert page.locator(f"tr.best[data-number='{best['number']}']").count() == 1
    screenshot(page, "sweep")

    # Make the best production: the alias moves to the version the sweep registered.
    page.click("#sweep-production")
    page.wait_for_selector("#sweep-is-production")
    with server.client() as http:
        model = http.get("/v1/models/playground-xor-sweep").json()
    assert model["aliases"]["production"] == best["model_version"]["version"]
    assert page.locator("#sweep-production").is_disabled()

    # The sweep is listed, and its row leads back to its page.
    page.goto(f"{server.base}/#/sweeps")
    row = page.locator(f"#sweeps-body tr[data-id='{sweep_id}']")
    row.wait_for()
    assert row.locator(".badge").inner_text() == "succeeded"
    assert "3/3" in row.inner_text()


def test_a_bad_search_space_is_reported_on_the_form(page: Any, server: Server) -> None:
    page.goto(f"{server.base}/#/playground")
    page.click("#pg-sweep summary")
    page.fill("#pg-sweep-lr-low", "0")  # a log-uniform range cannot start at 0
    page.click("#pg-sweep-start")
    error = page.locator("#pg-sweep-error .error")
    error.wait_for()
    assert "optimizer.lr" in error.inner_text()
    assert page.url.endswith("#/playground")
    assert page.locator("#pg-sweep-start").is_enabled()


def test_cancel_a_running_sweep_from_its_page(page: Any, server: Server) -> None:
    body = {
        "dataset": "xor",
        "model_name": "xor-slow-sweep",
        "spec": {
            "input_dim": 2,
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            # Batch size 1: long enough to be cancelled mid-trial.
            "training": {"epochs": 300, "batch_size": 1, "validation_split": 0.2},
        },
        "search_space": {
            "optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "layers[0].activation": {"type": "categorical", "choices": ["tanh", "relu"]},
        },
        "n_trials": 6,
        "max_parallel": 2,
        "pruner": "none",
    }
    with server.client() as http:
        response = http.post("/v1/sweeps", json=body)
        assert response.status_code == 202, response.text
        sweep_id = response.json()["id"]

    page.goto(f"{server.base}/#/sweeps")
    page.locator(f"#sweeps-body tr[data-id='{sweep_id}']").click()
    page.wait_for_url(f"**/#/sweeps/{sweep_id}")
    # Live: the table shows a trial that has trained an epoch or more (from the SSE stream).
    page.wait_for_function(
        "[...document.querySelectorAll('#sweep-trials tbody tr[data-number]')]"
        ".some((row) => Number(row.lastElementChild.previousElementSibling.textContent) >= 1)"
    )
    page.wait_for_function("Number(document.querySelector('#sweep-curves').dataset.points) >= 1")
    page.wait_for_selector("#sweep-status[data-status='running']")
    page.click("#sweep-cancel")
    page.wait_for_selector("#sweep-status[data-status='cancelled']", timeout=60_000)

    sweep = wait_until(
        lambda: (s := get_sweep(server, sweep_id))["status"] in TERMINAL and s,
        what="the sweep to end",
    )
    assert sweep["status"] == "cancelled"
    assert sweep["cancel_requested"] is True
    assert {t["state"] for t in sweep["trials"]} == {"cancelled"}
    assert all(t["epoch"] < 300 for t in sweep["trials"])
    assert page.locator("#sweep-trials tbody tr[data-number]").count() == len(sweep["trials"])
    assert page.locator("#sweep-parallel").get_attribute("data-lines") == str(len(sweep["trials"]))
    assert page.locator("#sweep-parallel polyline.cancelled").count() == len(sweep["trials"])
    assert page.locator("#sweep-cancel").is_disabled()
    assert page.locator("#sweep-production").is_disabled()
