"""The OpenAPI document is strictly valid OpenAPI 3.1, and /docs and /redoc use only the
app's own files (their rendering offline is tests/e2e/test_api_docs.py)."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

pytestmark = pytest.mark.anyio


async def test_document_passes_openapi_spec_validator(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises naming the first invalid part


async def test_event_stream_documents_each_event_in_its_schema(client: httpx.AsyncClient) -> None:
    """OpenAPI 3.1 has no itemSchema: a stream's `schema` is read as each event's (as
    schemathesis checks our streams), and the events themselves are in the description."""
    document = (await client.get("/openapi.json")).json()
    ok = document["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    event = ok["content"]["text/event-stream"]["schema"]
    assert event["type"] == "object"
    assert set(event["properties"]) == {"data", "event", "id", "retry"}
    for name in ("snapshot", "progress", "status", "end"):
        assert f"`{name}`" in ok["description"]
    assert "itemSchema" not in str(document)


async def test_validator_refuses_what_fastapi_emitted(client: httpx.AsyncClient) -> None:
    """Guards the tests above: FastAPI's `itemSchema` (an OpenAPI 3.2 field) fails the check."""
    document = (await client.get("/openapi.json")).json()
    media = document["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    media["text/event-stream"] = {"itemSchema": {"type": "object"}}
    with pytest.raises(OpenAPIValidationError, match="itemSchema"):
        validate(document)


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"]),
        ("/redoc", ["/redoc/redoc.standalone.js"]),
    ],
)
async def test_docs_pages_load_their_files_from_the_app(
    client: httpx.AsyncClient, page: str, assets: list[str]
) -> None:
    response = await client.get(page)  # no key: the reference is public, as before
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", response.text)
    assert urls, response.text
    outside = [url for url in urls if "//" in url]
    assert not outside, f"{page} loads files from elsewhere: {outside}"
    for asset in [*assets, "/docs/fastapi/favicon.png", "/openapi.json"]:
        assert asset in urls, (asset, urls)
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 0, asset


async def test_swagger_oauth2_redirect_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "oauth2" in response.text.lower()


async def test_docs_follow_the_proxy_prefix(app: FastAPI) -> None:
    """Behind a proxy that serves the app under /nns, the pages ask for /nns/... files."""
    prefixed = httpx.ASGITransport(app=app, root_path="/nns")
    async with httpx.AsyncClient(transport=prefixed, base_url="http://test") as behind:
        page = (await behind.get("/docs")).text
    assert "'/nns/openapi.json'" in page or '"/nns/openapi.json"' in page
    assert "/nns/docs/swagger-ui-bundle.js" in page
