"""Owner isolation as one matrix: another owner, a revoked key, a missing or forged key can
neither read, list, predict with, cancel, download, move, nor delete anything of bob's, and
bob's data is intact afterwards. Plus keys: hashed at rest, compared in constant time, and
revoked across processes at once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jobs_helpers import job_settings, xor_spec
from server_process import ServerProcess
from service_helpers import bearer
from serving_helpers import db, upload_model, xor_model_file

from service import auth as keys
from service.config import Settings

pytestmark = pytest.mark.anyio

CSV = b"a,b,y\n" + b"".join(
    f"{i % 2},{i // 2 % 2},{(i % 2) ^ (i // 2 % 2)}\n".encode() for i in range(40)
)
INFER = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0, 1]}]}
PREDICT = {"instances": [[0, 1]]}

#: Every route touching one of bob's resources: (method, path, JSON body).
ATTEMPTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/datasets/{dataset_id}", None),
    ("GET", "/v1/datasets/points", None),
    ("DELETE", "/v1/datasets/{dataset_id}", None),
    ("DELETE", "/v1/datasets/points", None),
    ("GET", "/v1/jobs/{job_id}", None),
    ("GET", "/v1/jobs/{job_id}/metrics", None),
    ("GET", "/v1/jobs/{job_id}/events", None),
    ("POST", "/v1/jobs/{job_id}/cancel", None),
    ("GET", "/v1/models/secret", None),
    ("GET", "/v1/models/secret/versions/1", None),
    ("GET", "/v1/models/secret/versions/production", None),
    ("GET", "/v1/models/secret/versions/latest/download", None),
    ("POST", "/v1/models/secret:predict", PREDICT),
    ("POST", "/v1/models/secret:predict", {**PREDICT, "alias": "production"}),
    ("PUT", "/v1/models/secret/aliases/production", {"version": 1}),
    ("PUT", "/v1/models/secret/aliases/staging", {"version": 1}),
    ("DELETE", "/v1/models/secret/aliases/production", None),
    ("DELETE", "/v1/models/secret/versions/1", None),
    ("DELETE", "/v1/models/secret", None),
    ("GET", "/v2/models/secret", None),
    ("GET", "/v2/models/secret/versions/1", None),
    ("GET", "/v2/models/secret/ready", None),
    ("GET", "/v2/models/secret/versions/1/ready", None),
    ("POST", "/v2/models/secret/infer", INFER),
    ("POST", "/v2/models/secret/versions/1/infer", INFER),
]
LISTS = ["/v1/datasets", "/v1/jobs", "/v1/models"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(database_url, tmp_path / "data")


async def _seed_bob(client: httpx.AsyncClient, bob: dict[str, str]) -> dict[str, Any]:
    """Bob's dataset, a job training on it, a model with an alias; returns the ids."""
    dataset = await client.post(
        "/v1/datasets",
        headers=bob,
        files={"file": ("points.csv", CSV)},
        data={"label_column": "y"},
    )
    assert dataset.status_code == 201, dataset.text
    assert (await upload_model(client, bob, "secret", xor_model_file())).status_code == 201
    alias = await client.put(
        "/v1/models/secret/aliases/production", headers=bob, json={"version": 1}
    )
    assert alias.status_code == 200, alias.text
    job = await client.post(
        "/v1/jobs",
        headers=bob,
        json={"spec": xor_spec(epochs=3), "dataset": dataset.json()["id"], "model_name": "trained"},
    )
    assert job.status_code == 202, job.text
    return {"dataset_id": dataset.json()["id"], "job_id": job.json()["id"]}


async def _snapshot(client: httpx.AsyncClient, bob: dict[str, str], ids: dict[str, Any]) -> Any:
    """What bob sees of his dataset, model (versions, aliases, weights) and job request."""
    job = (await client.get(f"/v1/jobs/{ids['job_id']}", headers=bob)).json()
    model = (await client.get("/v1/models/secret", headers=bob)).json()
    download = await client.get("/v1/models/secret/versions/1/download", headers=bob)
    datasets = (await client.get("/v1/datasets", headers=bob)).json()["datasets"]
    return {
        "datasets": [d for d in datasets if d["source"] == "upload"],
        "model": model,
        "weights": hashlib.sha256(download.content).hexdigest(),
        "job": {k: job[k] for k in ("id", "model_name", "dataset_id", "spec", "cancel_requested")},
    }


async def _wait_finished(
    client: httpx.AsyncClient, headers: dict[str, str], job_id: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = (await client.get(f"/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)


def _other_owner(app: FastAPI, bob_owner: str) -> dict[str, str]:
    return bearer(keys.create_key(db(app), "alice").key)


def _revoked_key_of_bob(app: FastAPI, bob_owner: str) -> dict[str, str]:
    created = keys.create_key(db(app), bob_owner, "to be revoked")
    keys.revoke_key(db(app), str(created.record.id))
    return bearer(created.key)


def _no_key(app: FastAPI, bob_owner: str) -> dict[str, str]:
    return {}


def _forged_key(app: FastAPI, bob_owner: str) -> dict[str, str]:
    """Bob's own prefix with a made-up secret."""
    prefix = keys.list_keys(db(app), bob_owner)[0].prefix
    return bearer(f"nns_{prefix}_{'A' * 43}")


@pytest.mark.parametrize(
    ("attacker", "status"),
    [(_other_owner, 404), (_revoked_key_of_bob, 401), (_no_key, 401), (_forged_key, 401)],
    ids=["other-owner", "revoked-key", "no-key", "forged-secret"],
)
async def test_nothing_of_bobs_is_reachable(
    client: httpx.AsyncClient,
    app: FastAPI,
    attacker: Callable[[FastAPI, str], dict[str, str]],
    status: int,
) -> None:
    bob = bearer(keys.create_key(db(app), "bob").key)
    ids = await _seed_bob(client, bob)
    before = await _snapshot(client, bob, ids)
    headers = attacker(app, "bob")

    for method, template, body in ATTEMPTS:
        path = template.format(**ids)
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code == status, (method, path, response.text)
        error = response.json()["error"]
        if path.startswith("/v2/"):  # the Open Inference Protocol's shape: {"error": "..."}
            assert isinstance(error, str) and error, (path, error)
        else:
            assert error["type"] == ("not_found" if status == 404 else "unauthorized")
        assert "bob" not in response.text
    for path in LISTS:
        listed = await client.get(path, headers=headers)
        if status == 404:  # another owner's lists are simply empty
            assert listed.status_code == 200
            assert "secret" not in listed.text and "points" not in listed.text
            assert ids["job_id"] not in listed.text
        else:
            assert listed.status_code == 401

    assert await _snapshot(client, bob, ids) == before
    finished = await _wait_finished(client, bob, ids["job_id"])
    assert finished["status"] == "succeeded", finished  # the cancel attempts did nothing
    predicted = await client.post("/v1/models/secret:predict", headers=bob, json=PREDICT)
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["predictions"][0]["label"] == "yes"


async def test_secrets_are_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, app: FastAPI
) -> None:
    """Known and unknown prefixes alike end in one hmac.compare_digest of two sha256 digests."""
    calls: list[tuple[str, str]] = []
    compare = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    created = keys.create_key(db(app), "dave")
    prefix = created.record.prefix
    assert keys.authenticate(db(app), created.key).owner == "dave"
    for key in (f"nns_{prefix}_wrong", "nns_000000000000_unknown"):
        with pytest.raises(keys.Unauthorized):
            keys.authenticate(db(app), key)
    assert len(calls) == 3
    assert all(len(a) == len(b) == 64 for a, b in calls)  # digests, never the raw secrets
    assert created.key.split("_", 2)[2] not in str(calls)


def test_revoking_from_another_process_stops_a_running_server_at_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    """No cache in between: `nn-service keys revoke` then the very next request is 401."""
    server = ServerProcess(tmp_path, sqlite_url)
    base = server.start()
    try:
        created = server.run_cli("keys", "create", "--owner", "erin")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert httpx.get(f"{base}/v1/whoami", headers=bearer(key)).status_code == 200
        revoked = server.run_cli("keys", "revoke", key.split("_")[1])
        assert revoked.returncode == 0, revoked.stderr
        response = httpx.get(f"{base}/v1/whoami", headers=bearer(key))
        assert response.status_code == 401
        assert "revoked" in response.json()["error"]["message"]
        assert httpx.get(f"{base}/v1/whoami", headers=bearer(server.key)).status_code == 200
    finally:
        server.stop()
