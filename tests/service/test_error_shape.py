"""Every error the service answers has the one JSON shape, whoever produced it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field
from service_helpers import bearer

from service.api.errors import ERROR_RESPONSES
from service.app import create_app
from service.config import Settings
from service.errors import Conflict

pytestmark = pytest.mark.anyio

LIMIT = 2048


class Item(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(gt=0)
    tags: list[str] = []


def _add_test_routes(app: FastAPI) -> None:
    @app.post("/test/items", responses=ERROR_RESPONSES)
    def create_item(item: Item) -> Item:
        return item

    @app.get("/test/conflict", responses=ERROR_RESPONSES)
    def conflict() -> None:
        raise Conflict("already exists", details=[])

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"max_body_bytes": LIMIT}))
    _add_test_routes(app)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_error(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"type", "message", "details"}
    assert error["type"] == type_
    assert isinstance(error["message"], str) and error["message"]
    for detail in error["details"]:
        assert set(detail) == {"field", "message"}
    return error


async def test_unknown_route_is_a_json_404(http: httpx.AsyncClient) -> None:
    error = assert_error(await http.get("/no/such/thing"), 404, "not_found")
    assert "/no/such/thing" in error["message"]


async def test_wrong_method_is_a_json_405_with_allow(http: httpx.AsyncClient) -> None:
    response = await http.delete("/healthz")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


async def test_validation_errors_name_each_field(http: httpx.AsyncClient) -> None:
    response = await http.post("/test/items", json={"name": "", "size": -1, "tags": [1, None]})
    error = assert_error(response, 422, "validation_error")
    fields = {d["field"] for d in error["details"]}
    assert {"body.name", "body.size", "body.tags.1"} <= fields
    assert error["message"].startswith("invalid request: body.")


async def test_malformed_json_is_a_422_naming_the_body(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/test/items", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    error = assert_error(response, 422, "validation_error")
    assert error["details"][0]["field"].startswith("body")


async def test_missing_body_is_a_422(http: httpx.AsyncClient) -> None:
    error = assert_error(await http.post("/test/items"), 422, "validation_error")
    assert error["details"][0]["field"] == "body"


async def test_oversized_body_with_content_length_is_a_json_413(http: httpx.AsyncClient) -> None:
    response = await http.post("/test/items", content=b"x" * (LIMIT + 1))
    error = assert_error(response, 413, "payload_too_large")
    assert str(LIMIT) in error["message"]
    assert error["details"] == [{"field": "body", "message": f"at most {LIMIT} bytes"}]


async def test_oversized_streamed_body_is_a_json_413(http: httpx.AsyncClient) -> None:
    """No Content-Length: the limit trips while the handler reads the body."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 512

    response = await http.post(
        "/test/items", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    error = assert_error(response, 413, "payload_too_large")
    assert str(LIMIT) in error["message"]


async def test_oversized_body_to_unknown_route_is_a_json_413(http: httpx.AsyncClient) -> None:
    assert_error(await http.post("/nowhere", content=b"z" * (LIMIT * 2)), 413, "payload_too_large")


async def test_body_under_the_limit_passes(http: httpx.AsyncClient) -> None:
    response = await http.post("/test/items", json={"name": "ok", "size": 3})
    assert response.status_code == 200
    assert response.json() == {"name": "ok", "size": 3, "tags": []}


async def test_service_errors_keep_their_status_and_type(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/test/conflict"), 409, "conflict")


async def test_unexpected_exception_is_a_json_500_without_internals(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await http.get("/test/crash")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    error_id = error["message"].split("id ")[1].rstrip(")")
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback went to the log


async def test_auth_errors_have_the_shape(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/whoami", headers=bearer("nns_000000000000_nope"))
    assert_error(response, 401, "unauthorized")


async def test_every_route_documents_its_errors(limited_app: FastAPI) -> None:
    schema = limited_app.openapi()
    assert "ErrorResponse" in schema["components"]["schemas"]
    operation = schema["paths"]["/v1/whoami"]["get"]
    for status in ("400", "401", "404", "409", "413", "422"):
        content = operation["responses"][status]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith("/ErrorResponse")
    readyz = schema["paths"]["/readyz"]["get"]["responses"]
    assert readyz["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
