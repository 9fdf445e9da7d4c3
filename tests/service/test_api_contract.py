"""Regressions found by the schemathesis fuzzing (tests/service/fuzz): each case answered a 5xx
or something its OpenAPI document did not promise."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from service_helpers import bearer
from serving_helpers import upload_model, xor_model_file
from sqlalchemy.exc import DataError

pytestmark = pytest.mark.anyio


async def test_huge_metrics_cursor_is_a_422_not_a_500(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    """SQLite cannot bind integers past 2**63: the cursor is bounded like the other ints."""
    response = await client.get(
        "/v1/jobs/job_0123456789abcdef/metrics",
        params={"after_epoch": 302260058510364754267531640832},
        headers=bearer(admin_key),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "query.after_epoch"


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/v1/jobs", "GET, POST"),
        ("/v1/datasets/pts", "GET, DELETE"),
        ("/v1/models/xor/aliases/production", "GET, PUT, DELETE"),
        ("/v1/models/xor:predict", "POST"),  # not the GET/DELETE of a model named "xor:predict"
        ("/healthz", "GET"),
    ],
)
async def test_405_allow_names_every_method_of_the_resource(
    client: httpx.AsyncClient, path: str, allow: str
) -> None:
    response = await client.request("OPTIONS", path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["type"] == "method_not_allowed"


async def test_event_stream_errors_are_documented_as_json(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    response = await client.get("/v1/jobs/job_0123456789abcdef/events", headers=bearer(admin_key))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    documented = (await client.get("/openapi.json")).json()
    responses = documented["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]
    assert set(responses["404"]["content"]) == {"application/json"}
    assert set(responses["200"]["content"]) == {"text/event-stream"}


async def test_multipart_fields_are_not_documented_as_nullable(
    client: httpx.AsyncClient,
) -> None:
    """A form can only omit a field, never send null: the document must not offer null."""
    documented = (await client.get("/openapi.json")).json()
    body = documented["paths"]["/v1/datasets"]["post"]["requestBody"]
    fields = body["content"]["multipart/form-data"]["schema"]["properties"]
    assert fields["format"]["enum"] == ["csv", "npz", "idx", "text"]
    assert "anyOf" not in fields["name"] and fields["name"]["type"] == "string"


async def test_version_and_alias_exclude_each_other_in_the_document(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    documented = (await client.get("/openapi.json")).json()
    request = documented["components"]["schemas"]["PredictRequest"]
    assert request["not"] == {"required": ["version", "alias"]}
    assert (
        await upload_model(client, bearer(admin_key), "xor", xor_model_file())
    ).status_code == 201
    response = await client.post(
        "/v1/models/xor:predict",
        headers=bearer(admin_key),
        json={"instances": [[0, 1]], "version": 1, "alias": "production"},
    )
    assert response.status_code == 422


async def test_whole_numbers_written_as_floats_are_integers(
    client: httpx.AsyncClient, app: FastAPI, admin_key: str
) -> None:
    """JSON Schema's "integer" includes 1.0; true and "1" stay refused."""
    headers = bearer(admin_key)
    assert (await upload_model(client, headers, "xor", xor_model_file())).status_code == 201
    moved = await client.put("/v1/models/xor/aliases/prod", headers=headers, json={"version": 1.0})
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 1
    predicted = await client.post(
        "/v1/models/xor:predict", headers=headers, json={"instances": [[0, 1]], "version": 1.0}
    )
    assert predicted.status_code == 200, predicted.text
    for bad in (True, "1", 1.5):
        refused = await client.put(
            "/v1/models/xor/aliases/prod", headers=headers, json={"version": bad}
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["details"][0]["field"] == "body.version"


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("string or blob too big", 413),
        ('value "99999999999" is out of range for type integer', 422),
    ],
)
async def test_values_the_database_cannot_hold_are_4xx(
    app: FastAPI, reason: str, status: int
) -> None:
    """Backstop for what a handler failed to refuse itself: a DataError is the request's
    fault (it was a 500 for a dataset over SQLite's 10^9-byte blob limit)."""

    @app.get("/test/data-error")
    def data_error() -> None:
        raise DataError("INSERT ...", {}, Exception(reason))

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/test/data-error")
    assert response.status_code == status, response.text
    assert reason in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/spam/score", {"text": "hi", "threshold": False}, "body.threshold"),
        (
            "/v1/jobs",
            {"dataset": "xor", "model_name": "m", "spec": {}, "epochs": True},
            "body.epochs",
        ),
        ("/v1/jobs", {"dataset": "xor", "model_name": "m", "spec": {}, "seed": "3"}, "body.seed"),
        (
            "/v1/jobs",
            {"dataset": "xor", "model_name": "m", "spec": {}, "learning_rate": True},
            "body.learning_rate",
        ),
    ],
)
async def test_booleans_and_strings_are_not_numbers(
    client: httpx.AsyncClient, admin_key: str, path: str, body: dict[str, object], field: str
) -> None:
    """{"threshold": false} was scored with threshold 0.0 (schemathesis)."""
    response = await client.post(path, headers=bearer(admin_key), json=body)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["error"]["details"]]
