"""The dashboard's files are served at / and /static without shadowing any API route."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_root_serves_the_dashboard(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in page.text
    for asset in (
        "/static/js/app.js",
        "/static/js/views/playground.js",
        "/static/js/views/sweeps.js",
        "/static/js/views/sweep.js",
        "/static/js/views/sweep_form.js",
        "/static/js/parallel.js",
        "/static/js/network.js",
        "/static/js/views/diagnostics.js",
        "/static/js/views/compare.js",
        "/static/js/views/lr_range.js",
        "/static/css/app.css",
    ):
        response = await client.get(asset)
        assert response.status_code == 200, asset
    script = await client.get("/static/js/api.js")
    assert "javascript" in script.headers["content-type"]


async def test_api_and_docs_are_not_shadowed(client: httpx.AsyncClient, admin_key: str) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/jobs" in schema["paths"]
    assert "/" not in schema["paths"]
    assert (await client.get("/v1/jobs")).status_code == 401  # still the API, still guarded
    jobs = await client.get("/v1/jobs", headers={"Authorization": f"Bearer {admin_key}"})
    assert jobs.status_code == 200
    missing = await client.get("/v1/no-such-route")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"


async def test_static_stays_inside_its_directory(client: httpx.AsyncClient) -> None:
    for path in ("/static/nope.js", "/static/../app.py", "/static/%2e%2e/app.py"):
        response = await client.get(path)
        assert response.status_code == 404, path
