"""Every client-facing limit, set through NNS_* variables on a real `nn-service serve` process.

The in-process tests check each limit's logic; this checks that each one is configurable
where operators configure it (the environment) and holds over real HTTP: body and upload
size (413), model parameters and epochs (422 naming the field), jobs per key (429),
total concurrency (queued, never refused), prediction rate (429 + Retry-After), wall-clock
timeout (failed, naming the timeout).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jobs_helpers import auth, slow_spec, wait_for_job_sync, xor_spec
from server_process import ServerProcess
from service_helpers import make_settings
from serving_helpers import xor_model_file

from nn_core.serialize import save_model
from nn_core.spec import build_model
from service import auth as keys
from service.db import Database

LIMITS = {
    "max_body_bytes": 20_000,
    "max_upload_bytes": 50_000,
    "max_model_params": 1_000,
    "max_epochs": 400,
    "max_jobs_per_key": 2,
    "max_concurrent_jobs": 1,
    "predict_rate_limit": 3,
    # Long enough for a 2-epoch job on a busy machine (starting its process alone can take
    # 2 s), far too short for slow_spec(epochs=300).
    "job_timeout_seconds": 6,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("limits")
    process = ServerProcess(tmp, f"sqlite:///{tmp / 'nns.db'}", **LIMITS)
    process.start()
    yield process
    process.stop()


def _key(server: ServerProcess, owner: str) -> dict[str, str]:
    """A new key of `owner`, written to the server's database by this process (the CLI that
    does the same is tested in test_keys_cli.py; a subprocess per key costs seconds here)."""
    settings = make_settings(server.env["NNS_DATABASE_URL"], server.data_dir)
    database = Database(settings)
    try:
        return auth(keys.create_key(database, owner).key)
    finally:
        database.dispose()


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    return error


def _fields(error: dict[str, Any]) -> list[str]:
    return [detail["field"] for detail in error["details"]]


def test_body_and_upload_sizes(server: ServerProcess) -> None:
    headers = auth(server.key)
    big_json = {"instances": [[0.0, 1.0]] * 3000}  # ~30 kB > 20 kB
    error = _error(
        httpx.post(f"{server.base}/v1/models/m:predict", json=big_json, headers=headers), 413
    )
    assert "20000 bytes" in error["message"] and _fields(error) == ["body"]

    # Uploads have their own, larger limit: 30 kB passes the JSON limit's place...
    csv = b"a,y\n" + b"1,0\n2,1\n" * 3750
    accepted = httpx.post(
        f"{server.base}/v1/datasets",
        headers=headers,
        files={"file": ("ok.csv", csv)},
        data={"label_column": "y"},
    )
    assert accepted.status_code == 201, accepted.text
    # ...and stops at 50 kB.
    refused = httpx.post(
        f"{server.base}/v1/datasets",
        headers=headers,
        files={"file": ("big.csv", csv * 2)},
        data={"label_column": "y", "name": "big"},
    )
    assert _error(refused, 413)["type"] == "payload_too_large"
    names = [
        d["name"]
        for d in httpx.get(f"{server.base}/v1/datasets", headers=headers).json()["datasets"]
    ]
    assert "big" not in names


def test_model_size_and_epochs_name_the_field(server: ServerProcess) -> None:
    headers = auth(server.key)
    wide = xor_spec()
    wide["layers"][0]["units"] = 400  # (2*400 + 400) + (400*2 + 2) = 2002 > 1000 parameters
    body = {"spec": wide, "dataset": "xor", "model_name": "wide"}
    error = _error(httpx.post(f"{server.base}/v1/jobs", json=body, headers=headers), 422)
    assert "the limit is 1,000" in error["message"]
    assert _fields(error)[0].startswith("spec.layers")

    body = {"spec": xor_spec(), "dataset": "xor", "model_name": "long", "epochs": 401}
    error = _error(httpx.post(f"{server.base}/v1/jobs", json=body, headers=headers), 422)
    assert _fields(error) == ["epochs"] and "400" in error["message"]

    # A model file over the limit is refused on upload too; the small XOR model fits.
    for name, data, status in (
        ("wide", save_model(build_model(wide)), 422),
        ("xor", xor_model_file(), 201),
    ):
        upload = httpx.post(
            f"{server.base}/v1/models/{name}/versions",
            headers=headers,
            files={"file": ("m.npz", data)},
        )
        assert upload.status_code == status, upload.text
    assert [
        m["name"] for m in httpx.get(f"{server.base}/v1/models", headers=headers).json()["models"]
    ] == ["xor"]


def test_jobs_per_key_refused_total_concurrency_queued_and_timeout(server: ServerProcess) -> None:
    alice, bob = _key(server, "alice"), _key(server, "bob")
    slow = {"spec": slow_spec(epochs=300), "dataset": "xor", "model_name": "slow"}
    first = httpx.post(f"{server.base}/v1/jobs", json=slow, headers=alice)
    assert first.status_code == 202, first.text
    # Beyond max_concurrent_jobs (1) another owner's job is accepted and waits its turn.
    quick = {"spec": xor_spec(epochs=2), "dataset": "xor", "model_name": "quick"}
    waiting = httpx.post(f"{server.base}/v1/jobs", json=quick, headers=bob)
    assert waiting.status_code == 202, waiting.text
    second = httpx.post(f"{server.base}/v1/jobs", json=quick, headers=alice)
    assert second.status_code == 202, second.text
    # Alice now has max_jobs_per_key (2) queued or running jobs: a third is refused.
    third = httpx.post(f"{server.base}/v1/jobs", json=quick, headers=alice)
    error = _error(third, 429)
    assert error["type"] == "too_many_jobs" and third.headers["retry-after"]

    key = alice["Authorization"].split()[1]
    running = wait_for_job_sync(
        server.base, key, first.json()["id"], lambda j: j["status"] == "running"
    )
    assert running["status"] == "running"
    statuses = httpx.get(f"{server.base}/v1/jobs/{waiting.json()['id']}", headers=bob).json()
    assert statuses["status"] == "queued"

    # The slow job hits the 6 s wall-clock limit; the queued ones then run and succeed.
    failed = wait_for_job_sync(
        server.base, key, first.json()["id"], lambda j: j["status"] != "running", timeout=30
    )
    assert failed["status"] == "failed"
    assert "timed out after 6 seconds" in failed["failure_reason"]
    bob_key = bob["Authorization"].split()[1]
    for owner_key, job in ((bob_key, waiting), (key, second)):
        done = wait_for_job_sync(
            server.base,
            owner_key,
            job.json()["id"],
            lambda j: j["status"] != "queued" and j["status"] != "running",
            timeout=30,
        )
        assert done["status"] == "succeeded", done


def test_prediction_rate_limit_per_key(server: ServerProcess) -> None:
    carol, dave = _key(server, "carol"), _key(server, "dave")
    for headers in (carol, dave):
        created = httpx.post(
            f"{server.base}/v1/models/xor/versions",
            headers=headers,
            files={"file": ("m.npz", xor_model_file())},
        )
        assert created.status_code == 201, created.text
    body = {"instances": [[0, 1]]}
    url = f"{server.base}/v1/models/xor:predict"
    assert [httpx.post(url, json=body, headers=carol).status_code for _ in range(3)] == [200] * 3
    limited = httpx.post(url, json=body, headers=carol)
    error = _error(limited, 429)
    assert error["type"] == "rate_limited" and "3 requests per minute" in error["message"]
    assert 1 <= int(limited.headers["retry-after"]) <= 20
    assert httpx.post(url, json=body, headers=dave).status_code == 200  # its own bucket
    assert httpx.get(f"{server.base}/v1/models/xor", headers=carol).status_code == 200
