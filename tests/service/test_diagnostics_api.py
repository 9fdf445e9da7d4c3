"""Training diagnostics over the API: stored per epoch by real training processes, served
at /v1/jobs/{id}/diagnostics, streamed as SSE `diagnostics` events, and the warnings on the
job resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from jobs_helpers import job_settings, parse_events, wait_for_job, xor_spec

from service.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(database_url, tmp_path / "data", max_jobs_per_key=3)


def _done(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


async def _train(client: httpx.AsyncClient, spec: dict[str, Any]) -> dict[str, Any]:
    body = {"spec": spec, "dataset": "xor", "model_name": "diag-net"}
    response = await client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return await wait_for_job(client, response.json()["id"], _done)


async def test_diagnostics_are_stored_paged_and_streamed(admin_client: httpx.AsyncClient) -> None:
    spec = xor_spec(epochs=4)
    spec["training"]["diagnostics"] = {"every": 2, "sample": 64}
    job = await _train(admin_client, spec)
    assert job["status"] == "succeeded" and job["warnings"] == []
    url = job["links"]["diagnostics"]
    assert url == f"/v1/jobs/{job['id']}/diagnostics"

    first = (await admin_client.get(f"{url}?limit=1")).json()
    assert first["total"] == 2 and first["next_after_epoch"] == 2
    layer = first["items"][0]["layers"][0]
    assert layer["activation"] == "tanh" and layer["param"] == "W"
    assert sum(layer["activations"]["histogram"]["counts"]) == 64 * 8
    assert layer["update_ratio"] > 0 and 0 <= layer["saturated"] <= 1
    rest = (await admin_client.get(f"{url}?after_epoch=2")).json()
    assert [i["epoch"] for i in rest["items"]] == [4] and rest["next_after_epoch"] is None

    events = parse_events((await admin_client.get(f"/v1/jobs/{job['id']}/events")).text)
    assert events[-1]["event"] == "end"
    replay = parse_events(
        (
            await admin_client.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "1"})
        ).text
    )
    streamed = [e["data"] for e in replay if e["event"] == "diagnostics"]
    assert [(d["job_id"], d["epoch"]) for d in streamed] == [(job["id"], 2), (job["id"], 4)]
    assert streamed[1]["layers"] == rest["items"][0]["layers"]


async def test_bad_diagnostics_requests_name_the_field(admin_client: httpx.AsyncClient) -> None:
    bad = await admin_client.get("/v1/jobs/job_0000/diagnostics")
    assert bad.status_code == 404
    spec = xor_spec()
    spec["training"]["diagnostics"] = {"every": 0}
    refused = await admin_client.post(
        "/v1/jobs", json={"spec": spec, "dataset": "xor", "model_name": "m"}
    )
    assert refused.status_code == 422
    assert "training.diagnostics.every" in str(refused.json()["error"]["details"])
    job = await _train(admin_client, xor_spec(epochs=1))
    limit = await admin_client.get(f"/v1/jobs/{job['id']}/diagnostics?limit=0")
    assert limit.status_code == 422 and "limit" in limit.text


async def test_a_dying_relu_network_is_warned_about(admin_client: httpx.AsyncClient) -> None:
    spec = xor_spec(epochs=3)
    spec["preprocess"] = [{"type": "standardize"}]
    spec["layers"] = [
        {"type": "dense", "units": 16, "activation": "relu"},
        {"type": "dense", "units": 16, "activation": "relu"},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ]
    spec["optimizer"] = {"name": "sgd", "lr": 50.0}
    job = await _train(admin_client, spec)
    codes = {w["code"]: w for w in job["warnings"]}
    assert "dead_relus" in codes, job
    assert codes["dead_relus"]["epoch"] >= 1 and "optimizer.lr" in codes["dead_relus"]["message"]
    again = (await admin_client.get(f"/v1/jobs/{job['id']}")).json()
    assert again["warnings"] == job["warnings"]
