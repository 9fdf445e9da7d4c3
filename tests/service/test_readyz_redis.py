"""/readyz with the rq runner: ready only while Redis answers too (jobs go through it).

Against the machine's real Redis, and the same URL pointed at a closed port.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from server_process import free_port
from service_helpers import make_settings

from service.app import create_app

pytestmark = pytest.mark.anyio


async def _readyz(tmp_path: Path, redis_url: str, runner: str = "rq") -> httpx.Response:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'nns.db'}",
        tmp_path / "data",
        runner=runner,
        redis_url=redis_url,
        rq_queue=f"nns-test-{uuid.uuid4().hex[:10]}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.get("/readyz")


async def test_ready_when_redis_answers(tmp_path: Path, redis_url: str) -> None:
    response = await _readyz(tmp_path, redis_url)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "database": "sqlite"}


async def test_503_naming_redis_when_it_does_not(tmp_path: Path) -> None:
    closed = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    response = await _readyz(tmp_path, closed)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "not_ready"
    assert error["message"].startswith(
        f"redis unreachable at redis://:***@127.0.0.1:{closed.rsplit(':', 1)[1]}"
    )
    assert "hunter2" not in response.text


async def test_the_embedded_runner_does_not_need_redis(tmp_path: Path) -> None:
    response = await _readyz(tmp_path, f"redis://127.0.0.1:{free_port()}/0", runner="embedded")
    assert response.status_code == 200, response.text
