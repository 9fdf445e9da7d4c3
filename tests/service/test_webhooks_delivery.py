"""Deliveries to a real receiver on 127.0.0.1: signed as Standard Webhooks defines (checked
with the `standardwebhooks` library), from the outbox, retried with backoff, logged, and
refused at delivery time when the URL's host is not public."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jobs_helpers import job_settings, wait_for_job, xor_spec
from serving_helpers import upload_model, xor_model_file
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook as Verifier
from waiting import until
from webhook_helpers import Receiver, db, key_for, register, running_receiver

from service.app import create_app
from service.config import Settings
from service.db import Database
from service.jobs import store
from service.jobs.run import run_training
from service.models import Webhook, WebhookAttempt, WebhookDelivery
from service.webhooks.delivery import deliver_due

pytestmark = pytest.mark.anyio

ALIAS = "/v1/models/xor/aliases/production"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(
        database_url,
        tmp_path / "data",
        webhook_allow_hosts="127.0.0.1",
        webhook_retry_seconds="0.3,0.3,0.3",
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def verified(secret: str, received: Any) -> dict[str, Any]:
    """The body, after the reference library checked its signature (raises otherwise)."""
    payload: dict[str, Any] = Verifier(secret).verify(received.body, received.headers)
    return payload


async def _log(client: httpx.AsyncClient, headers: dict[str, str], hook_id: str) -> list[Any]:
    answer = await client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=headers)
    assert answer.status_code == 200
    deliveries: list[Any] = answer.json()["deliveries"]
    return deliveries


async def test_a_succeeded_job_delivers_a_signed_job_succeeded(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    alice = key_for(app, "alice")
    hook = (await register(client, alice, receiver.url, "job.succeeded", "job.failed")).json()
    body = {"spec": xor_spec(epochs=3), "dataset": "xor", "model_name": "xor-net"}
    submitted = await client.post("/v1/jobs", headers=alice, json=body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=alice
    ) as alice_client:
        job = await wait_for_job(alice_client, job_id, lambda j: j["status"] == "succeeded")

    await until(receiver.answered, what="the job.succeeded delivery")
    [received] = receiver.answered()
    payload = verified(hook["secret"], received)
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["job_id"] == job_id
    assert payload["data"]["model_name"] == "xor-net"
    assert payload["data"]["version"] == job["model_version"]["version"] == 1
    assert received.headers["webhook-id"].startswith("msg_")

    entries = await _wait_log(app, client, alice, hook["id"], 1)
    assert entries[0]["event"] == "job.succeeded" and entries[0]["status_code"] == 200
    assert entries[0]["state"] == "delivered" and entries[0]["attempt"] == 1


async def _wait_log(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str], hook_id: str, n: int
) -> list[Any]:
    """The log through the API, once the database holds `n` attempts of the webhook."""

    def attempts() -> bool:
        with db(app).session() as session:
            query = select(func.count()).where(WebhookAttempt.webhook_id == hook_id)
            return (session.scalar(query) or 0) >= n

    await until(attempts, what=f"{n} delivery attempts")
    return await _log(client, headers, hook_id)


async def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    alice = key_for(app, "alice")
    hook = (await register(client, alice, receiver.url, "alias.moved")).json()
    assert (await upload_model(client, alice, "xor", xor_model_file())).status_code == 201
    receiver.statuses[:] = [500, 503]
    moved = await client.put(ALIAS, headers=alice, json={"version": 1})
    assert moved.status_code == 200, moved.text

    entries = await _wait_log(app, client, alice, hook["id"], 3)
    entries.reverse()  # oldest first
    assert [e["status_code"] for e in entries] == [500, 503, 200]
    assert [e["attempt"] for e in entries] == [1, 2, 3]
    assert {e["delivery_id"] for e in entries} == {entries[0]["delivery_id"]}
    assert {e["state"] for e in entries} == {"delivered"}
    times = [datetime.fromisoformat(e["created_at"]) for e in entries]
    assert all(b - a >= timedelta(seconds=0.3) for a, b in itertools.pairwise(times))

    posts = receiver.answered()
    assert len(posts) == 3
    assert len({p.headers["webhook-id"] for p in posts}) == 1  # one message, three attempts
    for post in posts:
        payload = verified(hook["secret"], post)
    assert payload["type"] == "alias.moved"
    assert payload["data"]["model"] == "xor" and payload["data"]["alias"] == "production"
    assert payload["data"]["version"] == 1


async def test_a_receiver_that_never_answers_2xx_fails_after_the_last_attempt(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    alice = key_for(app, "alice")
    hook = (await register(client, alice, receiver.url, "alias.moved")).json()
    assert (await upload_model(client, alice, "xor", xor_model_file())).status_code == 201
    receiver.statuses[:] = [500] * 10
    assert (await client.put(ALIAS, headers=alice, json={"version": 1})).status_code == 200
    entries = await _wait_log(app, client, alice, hook["id"], 4)
    assert [e["attempt"] for e in entries] == [4, 3, 2, 1]
    assert {e["state"] for e in entries} == {"failed"}
    assert len(receiver.answered()) == 4
    # Putting the same version again moves nothing: no new event.
    assert (await client.put(ALIAS, headers=alice, json={"version": 1})).status_code == 200
    with db(app).session() as session:
        assert len(session.scalars(select(WebhookDelivery)).all()) == 1


async def test_an_event_survives_a_restart_between_the_change_and_the_delivery(
    fresh_database: Settings, receiver: Receiver
) -> None:
    settings = fresh_database
    # First server: no runner, so nothing delivers. The job is trained here, in-process,
    # exactly as a runner's child would, and the server stops with the event undelivered.
    first = create_app(settings, start_runner=False)
    async with (
        first.router.lifespan_context(first),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as client,
    ):
        alice = key_for(first, "alice")
        hook = (await register(client, alice, receiver.url, "job.succeeded")).json()
        body = {"spec": xor_spec(epochs=2), "dataset": "xor", "model_name": "kept"}
        job_id = (await client.post("/v1/jobs", headers=alice, json=body)).json()["id"]
        [claimed] = store.claim_jobs(db(first), "test-runner", 1, 1)
        assert claimed.job_id == job_id
        assert run_training(job_id, settings, worker_id=claimed.worker_id).value == "succeeded"
    assert receiver.answered() == []

    second = create_app(settings)
    async with second.router.lifespan_context(second):
        await until(receiver.answered, what="the delivery after the restart")
    payload = verified(hook["secret"], receiver.answered()[0])
    assert payload["data"]["job_id"] == job_id and payload["data"]["model_name"] == "kept"


async def test_an_answer_that_never_ends_is_read_only_up_to_the_limit(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    alice = key_for(app, "alice")
    hook = (await register(client, alice, receiver.url, "alias.moved")).json()
    assert (await upload_model(client, alice, "xor", xor_model_file())).status_code == 201
    receiver.endless = True
    assert (await client.put(ALIAS, headers=alice, json={"version": 1})).status_code == 200
    [entry] = await _wait_log(app, client, alice, hook["id"], 1)
    assert entry["status_code"] == 200 and entry["state"] == "delivered"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_loopback_is_refused_at_delivery_without_the_allow_list(
    fresh_database: Settings, receiver: Receiver, host: str
) -> None:
    """Registration checked the URL then; delivery resolves and checks it again. The row is
    written directly, as if the name had resolved to a public address at registration (or
    the allow-list had been removed since)."""
    strict = fresh_database.model_copy(update={"webhook_allow_hosts": ""})
    app = create_app(strict)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        alice = key_for(app, "alice")
        with db(app).write_session() as session:
            session.add(
                Webhook(
                    id="wh_rebinding",
                    owner="alice",
                    url=f"http://{host}:{receiver.port}/hooks",
                    events=["alias.moved"],
                    secret="whsec_" + "A" * 32,
                )
            )
        assert (await upload_model(client, alice, "xor", xor_model_file())).status_code == 201
        moved = await client.put(ALIAS, headers=alice, json={"version": 1})
        assert moved.status_code == 200
        entries = await _wait_log(app, client, alice, "wh_rebinding", 1)
    assert entries[0]["status_code"] is None
    assert entries[0]["error"].startswith(f"refused: {host} resolves to")
    assert receiver.answered() == []  # the attempt was logged after it was refused


def _diverging_spec() -> dict[str, Any]:
    """Plain SGD at an absurd learning rate: the weights overflow in the first epochs."""
    spec = xor_spec(epochs=5)
    spec["layers"][0]["activation"] = "identity"
    spec["optimizer"] = {"name": "sgd", "lr": 1e30}
    return spec


async def test_a_failed_job_delivers_job_failed_with_its_reason(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    alice = key_for(app, "alice")
    hook = (await register(client, alice, receiver.url, "job.failed")).json()
    body = {"spec": _diverging_spec(), "dataset": "xor", "model_name": "doomed"}
    submitted = await client.post("/v1/jobs", headers=alice, json=body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    await until(receiver.answered, what="the job.failed delivery")
    payload = verified(hook["secret"], receiver.answered()[0])
    assert payload["type"] == "job.failed"
    assert payload["data"]["job_id"] == job_id
    assert "diverged" in payload["data"]["failure_reason"]


async def test_a_job_abandoned_past_its_last_attempt_records_job_failed(
    fresh_database: Settings, receiver: Receiver
) -> None:
    """Failing for want of a live worker (not in run_training) is a job.failed too."""
    app = create_app(fresh_database, start_runner=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        alice = key_for(app, "alice")
        await register(client, alice, receiver.url, "job.failed")
        body = {"spec": xor_spec(epochs=2), "dataset": "xor", "model_name": "orphan"}
        job_id = (await client.post("/v1/jobs", headers=alice, json=body)).json()["id"]
        [claimed] = store.claim_jobs(db(app), "a-worker-that-dies", 1, 1)
        later = datetime.now().astimezone() + timedelta(hours=1)
        changed = store.recover_abandoned(db(app), timedelta(seconds=3), 1, set(), now=later)
        assert changed == [(job_id, "failed")]
        with db(app).session() as session:
            [delivery] = session.scalars(select(WebhookDelivery)).all()
        assert delivery.event == "job.failed"
        assert delivery.payload["data"]["job_id"] == claimed.job_id
        assert "giving up" in delivery.payload["data"]["failure_reason"]


async def test_a_finished_sweep_delivers_sweep_finished_with_its_version(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    alice = key_for(app, "alice")
    hook = (await register(client, alice, receiver.url, "sweep.finished", "job.succeeded")).json()
    body = {
        "dataset": "xor",
        "model_name": "xor-sweep",
        "spec": xor_spec(epochs=2),
        "search_space": {"optimizer.lr": {"type": "float", "low": 0.01, "high": 0.1}},
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "n_trials": 1,
        "max_parallel": 1,
        "pruner": "none",
        "seed": 7,
    }
    submitted = await client.post("/v1/sweeps", headers=alice, json=body)
    assert submitted.status_code == 202, submitted.text
    sweep_id = submitted.json()["id"]
    await until(receiver.answered, what="the sweep.finished delivery")
    [received] = receiver.answered()  # a trial registers no version: no job.succeeded
    payload = verified(hook["secret"], received)
    assert payload["type"] == "sweep.finished"
    assert payload["data"]["sweep_id"] == sweep_id
    assert payload["data"]["status"] == "succeeded" and payload["data"]["version"] == 1


@pytest.mark.both_backends
async def test_concurrent_delivery_loops_send_each_delivery_once(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    """Two loops (as two RQ workers would) claim the same due rows at once."""
    alice = key_for(app, "alice")
    hook = (await register(client, alice, receiver.url, "alias.moved")).json()
    with db(app).write_session() as session:
        for n in range(30):
            session.add(
                WebhookDelivery(webhook_id=hook["id"], event="alias.moved", payload={"n": n})
            )
    databases = [Database(settings) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(_drain_outbox, database, settings, f"loop-{i}")
                for i, database in enumerate(databases)
            ]
            counts = [f.result() for f in futures]
    finally:
        for database in databases:
            database.dispose()
    await until(lambda: len(receiver.answered()) >= 30, what="30 deliveries")
    ids = [r.headers["webhook-id"] for r in receiver.answered()]
    assert len(ids) == len(set(ids)) == 30  # the app's own loop races too: still once each
    assert sum(counts) <= 30


def _drain_outbox(database: Database, settings: Settings, worker_id: str) -> int:
    total = 0
    while sent := deliver_due(database, settings, worker_id):
        total += sent
    return total
