"""Liveness, readiness, Prometheus metrics, and /v1/whoami."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.errors import ERROR_RESPONSES, error_responses
from service.auth import PrincipalDep
from service.db import Database
from service.deps import DatabaseDep
from service.errors import ServiceUnavailable
from service.schemas.health import HealthResponse, ReadyResponse, WhoAmIResponse

router = APIRouter()


@router.get("/healthz", response_model=HealthResponse, tags=["health"])
def healthz() -> HealthResponse:
    """The process is alive (nothing else is checked: restart it only if this fails)."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    responses=error_responses(503),
    tags=["health"],
)
def readyz(request: Request, database: DatabaseDep) -> ReadyResponse:
    """Start-up finished and the database answers: send traffic here."""
    check_ready(request, database)
    return ReadyResponse(status="ready", database=database.engine.dialect.name)


def check_ready(request: Request, database: Database) -> None:
    """503 "not_ready" until start-up has finished, and while the database does not answer."""
    if not request.app.state.started:
        raise ServiceUnavailable("starting up", type="not_ready")
    try:
        database.ping()
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        raise ServiceUnavailable(f"database unreachable: {reason}", type="not_ready") from exc


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    tags=["health"],
)
def metrics(request: Request) -> Response:
    """Prometheus exposition: HTTP requests and latency by route, training jobs by state."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


@router.get("/v1/whoami", response_model=WhoAmIResponse, responses=ERROR_RESPONSES, tags=["auth"])
def whoami(principal: PrincipalDep) -> WhoAmIResponse:
    """The owner and key behind this request's API key."""
    return WhoAmIResponse(
        owner=principal.owner,
        key_id=principal.key_id,
        key_name=principal.key_name,
        key_prefix=principal.key_prefix,
        is_admin=principal.is_admin,
    )
