"""API keys: creation, lookup, revocation, and the FastAPI dependency giving the caller.

A key looks like `nns_<prefix>_<secret>`: the prefix (12 hex chars) finds the row, the secret
(32 random bytes, urlsafe base64) is checked against its stored sha256 in constant time. A fast
hash is enough because the secret is random, not a password. Keys are checked against the
database on every request, so a revoked key stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import Database
from service.errors import Forbidden, Unauthorized
from service.hot_select import HotSelect
from service.models import ApiKey, utcnow
from service.private_files import private_dir

log = logging.getLogger(__name__)

KEY_SCHEME = "nns"
_PREFIX_RE = re.compile(r"[0-9a-f]{12}")
# Compared against when the prefix is unknown, so a miss costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"nn-service: no such key").hexdigest()
# last_used_at is informational; writing it at most this often keeps auth off SQLite's write lock.
_LAST_USED_RESOLUTION = timedelta(seconds=60)
_PG_ADMIN_KEY_LOCK = 0x6E6E735F6B6579  # "nns_key"


@dataclass(frozen=True)
class Principal:
    """Who is calling: every resource belongs to `owner`."""

    owner: str
    key_id: int
    key_name: str
    key_prefix: str
    is_admin: bool


@dataclass(frozen=True)
class CreatedKey:
    """A new key. `key` is the only time the full secret exists outside the client."""

    key: str
    record: ApiKey


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not _PREFIX_RE.fullmatch(parts[1]):
        return None
    if not parts[2]:
        return None
    return parts[1], parts[2]


def _add_key(session: Session, owner: str, name: str, admin: bool) -> CreatedKey:
    while True:
        prefix = secrets.token_hex(6)
        if session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    secret = secrets.token_urlsafe(32)
    record = ApiKey(
        owner=owner, name=name, prefix=prefix, secret_hash=hash_secret(secret), is_admin=admin
    )
    session.add(record)
    session.flush()
    return CreatedKey(key=f"{KEY_SCHEME}_{prefix}_{secret}", record=record)


def create_key(database: Database, owner: str, name: str = "", admin: bool = False) -> CreatedKey:
    if not owner.strip():
        raise ValueError("owner must not be empty")
    with database.write_session() as session:
        return _add_key(session, owner.strip(), name, admin)


def list_keys(database: Database, owner: str | None = None) -> list[ApiKey]:
    """All keys (revoked ones too), oldest first; optionally only one owner's."""
    query = select(ApiKey).order_by(ApiKey.id)
    if owner is not None:
        query = query.where(ApiKey.owner == owner)
    with database.session() as session:
        return list(session.scalars(query))


def find_key(session: Session, id_or_prefix: str) -> ApiKey | None:
    """Look a key up by numeric id, by prefix (`0123abcd4567`) or by `nns_<prefix>`."""
    ref = id_or_prefix.strip()
    if ref.startswith(f"{KEY_SCHEME}_"):
        ref = ref.split("_")[1]
    if _PREFIX_RE.fullmatch(ref):
        return session.scalar(select(ApiKey).where(ApiKey.prefix == ref))
    if ref.isdigit():
        return session.get(ApiKey, int(ref))
    return None


def revoke_key(database: Database, id_or_prefix: str) -> ApiKey | None:
    """Revoke a key (idempotent: an already revoked key keeps its first revocation time)."""
    with database.write_session() as session:
        record = find_key(session, id_or_prefix)
        if record is not None and record.revoked_at is None:
            record.revoked_at = utcnow()
        return record


def authenticate(database: Database, key: str) -> Principal:
    """The principal for a presented key; raises Unauthorized for anything else."""
    prefix, secret = _parse_or_refuse(key)
    with database.engine.connect() as connection:
        record = _key_row(connection, prefix)
    principal, touch = _verify(record, prefix, secret)
    if touch:
        _touch(database, principal.key_id)
    return principal


async def authenticate_async(database: Database, key: str) -> Principal:
    """authenticate() for the request path: the lookup through Database.read (on the event
    loop for SQLite), the occasional last-used write in a worker thread."""
    prefix, secret = _parse_or_refuse(key)
    record = await database.read(lambda connection: _key_row(connection, prefix))
    principal, touch = _verify(record, prefix, secret)
    if touch:
        await anyio.to_thread.run_sync(_touch, database, principal.key_id)
    return principal


def _parse_or_refuse(key: str) -> tuple[str, str]:
    parsed = parse_key(key)
    if parsed is None:
        raise Unauthorized("invalid API key")
    return parsed


def _key_row(connection: Connection, prefix: str) -> tuple[Any, ...] | None:
    # Every request runs this: a narrow row, not an ORM entity.
    return _KEY_QUERY.first(connection, {"prefix": prefix})


def _verify(record: tuple[Any, ...] | None, prefix: str, secret: str) -> tuple[Principal, bool]:
    """The principal of a matching, unrevoked key's row, and whether its last use is due
    to be recorded (at most every _LAST_USED_RESOLUTION, to keep requests off the write lock)."""
    if record is None:  # compared all the same, so a miss costs what a wrong secret costs
        hmac.compare_digest(_DUMMY_HASH, hash_secret(secret))
        raise Unauthorized("invalid API key")
    key_id, owner, name, secret_hash, is_admin, revoked_at, last_used_at = record
    if not hmac.compare_digest(secret_hash, hash_secret(secret)):
        raise Unauthorized("invalid API key")
    if revoked_at is not None:
        raise Unauthorized("this API key has been revoked")
    principal = Principal(
        owner=owner,
        key_id=key_id,
        key_name=name,
        key_prefix=f"{KEY_SCHEME}_{prefix}",
        is_admin=is_admin,
    )
    return principal, last_used_at is None or utcnow() - last_used_at >= _LAST_USED_RESOLUTION


_KEY_QUERY = HotSelect(
    select(
        ApiKey.id,
        ApiKey.owner,
        ApiKey.name,
        ApiKey.secret_hash,
        ApiKey.is_admin,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
    ).where(ApiKey.prefix == bindparam("prefix"))
)


def _touch(database: Database, key_id: int) -> None:
    try:
        with database.write_session() as session:
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
    except OperationalError as exc:  # bookkeeping only: never fail a request over it
        log.warning("could not record last use of key %s: %s", key_id, exc.orig)


def ensure_admin_key(database: Database, settings: Settings) -> Path | None:
    """On first start (no usable key at all), create an admin key and write it to a 0600 file.

    Returns the file's path when a key was created. The key itself is never logged.
    """
    path = settings.admin_key_path
    with database.write_session() as session:
        if database.is_postgres:  # serialize concurrent first starts (SQLite: BEGIN IMMEDIATE)
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_ADMIN_KEY_LOCK})
        if session.scalar(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)):
            return None
        created = _add_key(session, "admin", "admin key created at first start", admin=True)
        # Written before the commit: if the file cannot be written, no key is created.
        write_secret_file(path, created.key)
    log.warning("created an admin API key; it is in %s (mode 0600)", path)
    return path


def write_secret_file(path: Path, content: str) -> None:
    """Atomically write `content` to a file that is 0600 from its creation (never chmod after)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# OpenAPI shows both ways of sending a key; either one is enough.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer nns_<prefix>_<secret>")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="X-API-Key: nns_<prefix>_<secret>"
)


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
ApiKeyHeaderDep = Annotated[str | None, Security(_api_key_header)]


async def current_principal(
    request: Request, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> Principal:
    """FastAPI dependency: the authenticated caller, or a 401 error.

    The database comes from app.state, not from a sub-dependency: every request resolves
    this, and each dependency FastAPI solves costs more than the attribute read."""
    key = bearer.credentials if bearer is not None else api_key
    if not key:
        raise Unauthorized(
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    return await authenticate_async(request.app.state.db, key)


PrincipalDep = Annotated[Principal, Depends(current_principal)]

#: `openapi_extra` for a route that calls request_principal: the security FastAPI would
#: document for PrincipalDep (either scheme is enough).
KEY_SECURITY: dict[str, Any] = {
    "security": [{_bearer.scheme_name: []}, {_api_key_header.scheme_name: []}]
}


async def request_principal(request: Request) -> Principal:
    """current_principal for a route that takes no dependencies (the `:predict` hot path):
    the two schemes read the request's headers, called here instead of solved by FastAPI."""
    return await current_principal(request, await _bearer(request), await _api_key_header(request))


def require_admin(principal: PrincipalDep) -> Principal:
    """FastAPI dependency for admin-only routes (403 for other keys)."""
    if not principal.is_admin:
        raise Forbidden("this operation needs an admin API key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
