"""API keys: 401 without a valid key, instant revocation, hashed storage, the admin key."""

from __future__ import annotations

import stat

import httpx
import pytest
from fastapi import FastAPI
from service_helpers import bearer
from sqlalchemy import select

from service import auth
from service.api.errors import ERROR_RESPONSES
from service.app import create_app
from service.auth import AdminDep
from service.config import Settings
from service.db import Database
from service.models import ApiKey

pytestmark = pytest.mark.anyio


def _db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


def _assert_401(response: httpx.Response, message: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["type"] == "unauthorized"
    assert message in error["message"]


async def test_no_key_is_401(client: httpx.AsyncClient) -> None:
    _assert_401(await client.get("/v1/whoami"), "missing API key")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer nns_zzzzzzzzzzzz_secret"},
        {"Authorization": "Bearer nns_0123456789ab_"},
        {"X-API-Key": "nns_0123456789ab_wrongsecret"},
        {"X-API-Key": "' OR 1=1 --"},
    ],
)
async def test_malformed_or_unknown_key_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    _assert_401(await client.get("/v1/whoami", headers=headers), "invalid API key")


async def test_right_prefix_wrong_secret_is_401(client: httpx.AsyncClient, admin_key: str) -> None:
    scheme, prefix, _secret = admin_key.split("_", 2)
    forged = f"{scheme}_{prefix}_{'A' * 43}"
    _assert_401(await client.get("/v1/whoami", headers=bearer(forged)), "invalid API key")


async def test_non_bearer_scheme_is_not_accepted(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.get("/v1/whoami", headers={"Authorization": f"Basic {admin_key}"})
    _assert_401(response, "missing API key")


async def test_both_headers_authenticate(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = auth.create_key(_db(app), "alice", "laptop")
    for headers in (bearer(created.key), {"X-API-Key": created.key}):
        response = await client.get("/v1/whoami", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "owner": "alice",
            "key_id": created.record.id,
            "key_name": "laptop",
            "key_prefix": f"nns_{created.record.prefix}",
            "is_admin": False,
        }


async def test_revoked_key_fails_at_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = auth.create_key(_db(app), "bob")
    assert (await client.get("/v1/whoami", headers=bearer(created.key))).status_code == 200
    revoked = auth.revoke_key(_db(app), f"nns_{created.record.prefix}")
    assert revoked is not None and revoked.revoked_at is not None
    _assert_401(await client.get("/v1/whoami", headers=bearer(created.key)), "revoked")
    # Revoking again is harmless and keeps the first time.
    again = auth.revoke_key(_db(app), str(created.record.id))
    assert again is not None and again.revoked_at == revoked.revoked_at


async def test_keys_are_stored_hashed(app: FastAPI) -> None:
    created = auth.create_key(_db(app), "carol")
    secret = created.key.split("_", 2)[2]
    assert len(secret) >= 43  # 32 random bytes
    with _db(app).session() as session:
        rows = session.execute(select(ApiKey.__table__)).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert secret not in stored and created.key not in stored
    assert created.record.secret_hash == auth.hash_secret(secret)


async def test_last_use_is_recorded(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = auth.create_key(_db(app), "dave")
    assert created.record.last_used_at is None
    await client.get("/v1/whoami", headers=bearer(created.key))
    [record] = auth.list_keys(_db(app), owner="dave")
    assert record.last_used_at is not None


async def test_admin_key_file_is_private_and_works(
    client: httpx.AsyncClient, settings: Settings, admin_key: str
) -> None:
    mode = stat.S_IMODE(settings.admin_key_path.stat().st_mode)
    assert mode == 0o600
    assert admin_key.startswith("nns_")
    response = await client.get("/v1/whoami", headers=bearer(admin_key))
    assert response.status_code == 200
    assert response.json()["is_admin"] is True


async def test_admin_key_is_not_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key = settings.admin_key_path.read_text().strip()
    assert str(settings.admin_key_path) in caplog.text
    assert key not in caplog.text and key.split("_", 2)[2] not in caplog.text


async def test_restart_keeps_the_admin_key(settings: Settings, admin_key: str) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    assert settings.admin_key_path.read_text().strip() == admin_key
    [only] = auth.list_keys(_db(app))
    assert only.is_admin


async def test_existing_keys_mean_no_admin_key_is_made(settings: Settings) -> None:
    from service import migrate

    migrate.upgrade(settings)
    database = Database(settings)
    try:
        auth.create_key(database, "eve")
    finally:
        database.dispose()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    assert not settings.admin_key_path.exists()


async def test_admin_only_routes_answer_403_to_others(app: FastAPI, admin_key: str) -> None:
    @app.get("/test/admin-only", responses=ERROR_RESPONSES)
    def admin_only(principal: AdminDep) -> dict[str, str]:
        return {"owner": principal.owner}

    created = auth.create_key(_db(app), "frank")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        denied = await http.get("/test/admin-only", headers=bearer(created.key))
        allowed = await http.get("/test/admin-only", headers=bearer(admin_key))
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "forbidden"
    assert allowed.json() == {"owner": "admin"}
