"""Postman's converter (openapi-to-postmanv2, installed by `npm ci` in tools/postman) turns the
live /openapi.json into a collection with every operation, and the committed collection in
docs/postman/ lists the same requests, so it cannot go stale silently."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from environment import missing
from server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
CONVERTER = ROOT / "tools" / "postman" / "node_modules" / ".bin" / "openapi2postmanv2"
COMMITTED = ROOT / "docs" / "postman" / "nn-service.postman_collection.json"
REGENERATE = "(cd tools/postman && npm ci) && .venv/bin/python tools/postman/build_collection.py"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def live_document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """/openapi.json as a real `nn-service serve` answers it."""
    server = ServerProcess(tmp_path_factory.mktemp("postman"))
    server.start()
    try:
        document: dict[str, Any] = httpx.get(f"{server.base}/openapi.json", timeout=30).json()
        yield document
    finally:
        server.stop()


@pytest.fixture(scope="module")
def converted(
    live_document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The collection the converter's CLI builds from the live document."""
    if shutil.which("node") is None:
        missing("Node.js is not installed (apt-get install nodejs npm)")
    if not CONVERTER.is_file():
        missing("Postman's converter is not installed: cd tools/postman && npm ci")
    work = tmp_path_factory.mktemp("convert")
    (work / "openapi.json").write_text(json.dumps(live_document), encoding="utf-8")
    done = subprocess.run(
        [str(CONVERTER), "-s", "openapi.json", "-o", "out.json"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    collection: dict[str, Any] = json.loads((work / "out.json").read_text(encoding="utf-8"))
    return collection


def requests_of(collection: dict[str, Any]) -> list[tuple[str, str]]:
    """(METHOD, /path) of every request, however the collection's folders nest them."""
    found: list[tuple[str, str]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"])
            else:
                request = item["request"]
                found.append((request["method"], "/" + "/".join(request["url"]["path"])))

    walk(collection["item"])
    return sorted(found)


def documented(document: dict[str, Any]) -> list[tuple[str, str]]:
    """The document's operations, their paths written as Postman writes them: a whole-segment
    parameter becomes :name, one inside a segment ({name}:predict) {{name}}."""

    def postman_path(template: str) -> str:
        segments = [
            ":" + segment[1:-1]
            if re.fullmatch(r"\{[^}]+\}", segment)
            else re.sub(r"\{([^}]+)\}", r"{{\1}}", segment)
            for segment in template.split("/")
        ]
        return "/".join(segments)

    return sorted(
        (method.upper(), postman_path(path))
        for path, operations in document["paths"].items()
        for method in operations
        if method in METHODS
    )


def test_converter_builds_every_operation_of_the_live_document(
    converted: dict[str, Any], live_document: dict[str, Any]
) -> None:
    requests = requests_of(converted)
    assert ("POST", "/v1/models/{{name}}:predict") in requests
    assert ("POST", "/v1/jobs") in requests
    assert ("GET", "/v1/jobs/:job_id/events") in requests
    assert requests == documented(live_document)


def test_committed_collection_lists_todays_requests(converted: dict[str, Any]) -> None:
    committed = set(requests_of(json.loads(COMMITTED.read_text(encoding="utf-8"))))
    today = set(requests_of(converted))
    assert committed == today, (
        f"{COMMITTED.relative_to(ROOT)} is stale (missing: {sorted(today - committed)}, "
        f"no longer served: {sorted(committed - today)}); regenerate it: {REGENERATE}"
    )


def test_committed_collection_asks_for_the_server_and_the_key() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    variables = {v["key"]: v["value"] for v in committed["variable"]}
    assert variables["baseUrl"] == "http://127.0.0.1:8000"
    assert variables["bearerToken"] == ""  # the user sets their key; none is committed
    predict = next(
        item
        for folder in committed["item"]
        for item in folder.get("item", [])
        if item["request"]["url"]["path"][-1] == "{{name}}:predict"
    )
    assert predict["request"]["auth"]["bearer"] == [{"key": "token", "value": "{{bearerToken}}"}]
    assert predict["request"]["url"]["host"] == ["{{baseUrl}}"]
