"""POST /v1/jobs/{id}/predict: a running job's latest checkpoint answers predictions."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from jobs_helpers import job_settings, slow_spec, wait_for_job

from service.config import Settings

pytestmark = pytest.mark.anyio

GRID = [[-4.0, -4.0], [4.0, 4.0], [-4.0, 4.0]]


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return job_settings(sqlite_url, tmp_path / "data", checkpoint_every=2)


async def test_running_job_predicts_from_its_checkpoint_then_409_when_done(
    admin_client: httpx.AsyncClient,
) -> None:
    body = {"spec": slow_spec(epochs=40), "dataset": "xor", "model_name": "preview"}
    job = (await admin_client.post("/v1/jobs", json=body)).json()
    await wait_for_job(admin_client, job["id"], lambda j: j["progress"]["epoch"] >= 3)

    response = await admin_client.post(f"/v1/jobs/{job['id']}/predict", json={"instances": GRID})
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["job_id"] == job["id"] and preview["epoch"] >= 2
    assert len(preview["predictions"]) == 3
    for prediction in preview["predictions"]:
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    assert preview["threshold"] == 0.5  # a checkpoint is not a version: 0.5 unless asked
    classes = list(preview["predictions"][0]["probabilities"])
    for threshold, expected in ((0.0, classes[1]), (1.0, classes[0])):
        cut = await admin_client.post(
            f"/v1/jobs/{job['id']}/predict", json={"instances": GRID, "threshold": threshold}
        )
        assert cut.status_code == 200, cut.text
        assert cut.json()["threshold"] == threshold
        assert [str(p["label"]) for p in cut.json()["predictions"]] == [expected] * len(GRID)

    bad = await admin_client.post(f"/v1/jobs/{job['id']}/predict", json={"instances": [[1.0]]})
    assert bad.status_code == 422

    await admin_client.post(f"/v1/jobs/{job['id']}/cancel")
    await wait_for_job(admin_client, job["id"], lambda j: j["status"] == "cancelled")
    gone = await admin_client.post(f"/v1/jobs/{job['id']}/predict", json={"instances": GRID})
    assert gone.status_code == 409 and gone.json()["error"]["type"] == "no_checkpoint"


async def test_unknown_job_is_404(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post("/v1/jobs/job_nope/predict", json={"instances": GRID})
    assert response.status_code == 404
    assert response.json()["error"]["details"][0]["field"] == "job_id"
