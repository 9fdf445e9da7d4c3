"""Liveness, readiness, Prometheus metrics, and /v1/whoami."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.errors import ERROR_RESPONSES, error_responses
from service.auth import PrincipalDep
from service.config import Settings
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
    """503 "not_ready" until start-up has finished, while the database does not answer, and
    (with the rq runner) while Redis does not: jobs submitted then could not be queued."""
    if not request.app.state.started:
        raise ServiceUnavailable("starting up", type="not_ready")
    try:
        database.ping()
    except Exception as exc:
        raise ServiceUnavailable(f"database unreachable: {_reason(exc)}", type="not_ready") from exc
    settings: Settings = request.app.state.settings
    if settings.runner == "rq":
        _ping_redis(settings.redis_url)


def _ping_redis(url: str) -> None:
    """A fresh short-timeout connection per probe: a hung Redis fails the probe in seconds,
    and nothing is shared with the runner's own client."""
    import redis  # the scale extra, installed wherever runner = "rq" can start

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        raise ServiceUnavailable(
            f"redis unreachable at {_redacted(url)}: {_reason(exc)}", type="not_ready"
        ) from exc
    finally:
        client.close()


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]


def _redacted(url: str) -> str:
    """The URL without its password (it is in NNS_REDIS_URL with a password-protected Redis)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


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
