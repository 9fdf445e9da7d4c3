"""The /v1/webhooks resource and the SSRF guard at registration (no deliveries here)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from service_helpers import make_settings
from webhook_helpers import key_for, register

from service.config import Settings
from service.webhooks import signing, urls

pytestmark = pytest.mark.anyio

RECEIVER = "http://127.0.0.1:9/hooks"  # never called: these tests deliver nothing


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "data", webhook_allow_hosts="127.0.0.1")


async def test_create_list_get_delete_and_the_secret_is_shown_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = key_for(app, "alice")
    created = await register(client, alice, RECEIVER, "job.succeeded", "sweep.finished")
    assert created.status_code == 201, created.text
    hook = created.json()
    assert created.headers["location"] == f"/v1/webhooks/{hook['id']}"
    assert hook["events"] == ["job.succeeded", "sweep.finished"]
    assert hook["secret"].startswith("whsec_") and len(signing.secret_bytes(hook["secret"])) >= 24

    listed = (await client.get("/v1/webhooks", headers=alice)).json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    one = (await client.get(f"/v1/webhooks/{hook['id']}", headers=alice)).json()
    assert one["url"] == RECEIVER and "secret" not in one and "secret" not in listed[0]
    log = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=alice)
    assert log.json() == {"deliveries": []}

    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=alice)).status_code == 204
    assert (await client.get(f"/v1/webhooks/{hook['id']}", headers=alice)).status_code == 404


async def test_another_owners_webhook_is_404(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice, bob = key_for(app, "alice"), key_for(app, "bob")
    hook = (await register(client, alice, RECEIVER)).json()
    for method, path in (
        ("GET", f"/v1/webhooks/{hook['id']}"),
        ("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
        ("DELETE", f"/v1/webhooks/{hook['id']}"),
    ):
        answer = await client.request(method, path, headers=bob)
        assert answer.status_code == 404, (method, path)
    assert (await client.get("/v1/webhooks", headers=bob)).json() == {"webhooks": []}
    assert (await client.get(f"/v1/webhooks/{hook['id']}", headers=alice)).status_code == 200


async def test_unknown_events_answer_422_naming_events(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    answer = await register(client, key_for(app, "alice"), RECEIVER, "job.exploded")
    assert answer.status_code == 422
    assert any("events" in d["field"] for d in answer.json()["error"]["details"])


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hooks",
        "http://192.168.1.20/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hooks",
        "http://[fd00:ec2::254]/hooks",
        "http://[::ffff:10.0.0.1]/hooks",
        "http://0.0.0.0/hooks",
        "http://224.0.0.1/hooks",
        "ftp://example.com/hooks",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1/hooks",
        "not a url",
    ],
)
async def test_urls_that_are_not_public_http_answer_422_naming_url(
    app: FastAPI, client: httpx.AsyncClient, url: str
) -> None:
    answer = await register(client, key_for(app, "alice"), url)
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["error"]["details"]] == ["url"]


async def test_loopback_is_refused_without_the_allow_list(
    fresh_database: Settings, tmp_path: Path
) -> None:
    from service.app import create_app

    strict = fresh_database.model_copy(update={"webhook_allow_hosts": ""})
    application = create_app(strict, start_runner=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            alice = key_for(application, "alice")
            for url in (RECEIVER, "http://localhost:9/hooks"):
                answer = await register(client, alice, url)
                assert answer.status_code == 422, url
                assert answer.json()["error"]["details"][0]["field"] == "url"


def test_the_guard_checks_every_resolved_address() -> None:
    nothing = urls.AllowList.parse("")
    with pytest.raises(urls.UnsafeURL, match="localhost resolves to"):
        urls.check("http://localhost:8000/", nothing)
    allowed = urls.check("http://localhost:8000/", urls.AllowList.parse("localhost"))
    assert ipaddress.ip_address(allowed.address).is_loopback
    assert allowed.url.host == "localhost"
    by_cidr = urls.AllowList.parse("10.0.0.0/8, 127.0.0.1")
    assert urls.check("http://10.1.2.3/", by_cidr).address == "10.1.2.3"
    assert urls.blocked(ipaddress.ip_address("8.8.8.8")) is False
    assert urls.blocked(ipaddress.ip_address("100.64.0.1")) is True  # carrier-grade NAT


async def test_a_name_that_does_not_resolve_yet_is_accepted_and_checked_at_delivery(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    answer = await register(client, key_for(app, "alice"), "https://hooks.example.invalid/x")
    assert answer.status_code == 201, answer.text
    with pytest.raises(urls.Unresolvable):
        urls.check("https://hooks.example.invalid/x", urls.AllowList.parse(""))
