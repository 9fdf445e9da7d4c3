"""/v1/models: the caller's models, versions, aliases, model-file download/upload, deletes.

Versions come from training jobs (registered by service/jobs) or from uploaded model files,
which are validated completely (spec, array shapes and dtypes, parameter limit) before
anything is stored. Deletes evict the loaded models from the prediction cache.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nn_core.spec import model_to_spec
from service.api.errors import ERROR_RESPONSES
from service.api.forms import form_fields, form_file, multipart_body, read_upload, uploaded_form
from service.api.headers import attachment
from service.auth import PrincipalDep
from service.config import Settings
from service.db import Database
from service.deps import DatabaseDep, ModelCacheDep, SessionDep, SettingsDep
from service.models import Model, ModelAlias, ModelVersion
from service.onnx_export import export_onnx
from service.registry import reads, traffic, writes
from service.registry.files import validate_model_file
from service.registry.names import ALIAS_RE, MAX_VERSION, check_model_name
from service.schemas.models import (
    AliasOut,
    AliasRequest,
    AliasTraffic,
    ModelDetail,
    ModelList,
    ModelSummary,
    TrafficShare,
    VersionDetail,
    VersionOut,
    VersionPatch,
)
from service.serving import load_version
from service.webhooks import outbox
from service.webhooks.events import ALIAS_MOVED

router = APIRouter(prefix="/v1/models", tags=["models"])
upload_router = APIRouter(prefix="/v1/models", tags=["models"])

VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION, description="Version number")]
VersionRef = Annotated[
    str, Path(max_length=64, description="Version number, alias (e.g. production) or latest")
]
AliasName = Annotated[str, Path(pattern=ALIAS_RE.pattern, description="Alias, e.g. production")]
FileFormat = Annotated[
    Literal["npz", "onnx"],
    Query(
        alias="format",
        description="npz: the nn-core file (uploads again); onnx: an ONNX model of the whole "
        "prediction path for other runtimes (422 naming a part ONNX cannot express)",
    ),
]


@router.get("", response_model=ModelList, responses=ERROR_RESPONSES)
def list_models(principal: PrincipalDep, session: SessionDep) -> ModelList:
    """Your models, each with its latest version and aliases."""
    summaries = []
    for model in reads.list_models(session, principal.owner):
        versions = _versions(session, model)
        summaries.append(
            ModelSummary(
                name=model.name,
                created_at=model.created_at,
                n_versions=len(versions),
                latest_version=versions[-1] if versions else None,
                aliases=reads.aliases_of(session, model),
                traffic=_traffic(session, model),
            )
        )
    return ModelList(models=summaries)


@router.get("/{name}", response_model=ModelDetail, responses=ERROR_RESPONSES)
def get_model(name: str, principal: PrincipalDep, session: SessionDep) -> ModelDetail:
    """All versions of a model with their test metrics, source job and aliases."""
    model = reads.get_model(session, principal.owner, name)
    return ModelDetail(
        name=model.name,
        created_at=model.created_at,
        aliases=reads.aliases_of(session, model),
        traffic=_traffic(session, model),
        versions=_versions(session, model),
    )


@router.get("/{name}/versions/{version}", response_model=VersionDetail, responses=ERROR_RESPONSES)
def get_version(
    name: str, version: VersionRef, principal: PrincipalDep, session: SessionDep
) -> VersionDetail:
    """One version, including its complete spec."""
    model = reads.get_model(session, principal.owner, name)
    row = reads.resolve_version(session, model, version)
    out = _version_out(session, model, row)
    return VersionDetail(**out.model_dump(), spec=row.spec)


@router.get(
    "/{name}/versions/{version}/download",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The nn-core model file (npz, loads without pickle), or with "
            "format=onnx an ONNX model (see service/onnx_export.py)",
        },
        **ERROR_RESPONSES,
    },
)
def download_version(
    name: str,
    version: VersionRef,
    principal: PrincipalDep,
    session: SessionDep,
    cache: ModelCacheDep,
    file_format: FileFormat = "npz",
) -> Response:
    """The model file of a version; upload it again with POST /v1/models/{name}/versions.
    `format=onnx` gives an ONNX model whose output equals :predict's instead."""
    model = reads.get_model(session, principal.owner, name)
    row = reads.resolve_version(session, model, version)
    if file_format == "onnx":
        loaded = load_version(session, cache, row)
        return Response(
            content=export_onnx(loaded, model.name, row.version, row.threshold),
            media_type="application/octet-stream",
            headers={"Content-Disposition": attachment(f"{model.name}-v{row.version}.onnx")},
        )
    weights = reads.read_weights(session, row.id)
    return Response(
        content=weights,
        media_type="application/octet-stream",
        headers={"Content-Disposition": attachment(f"{model.name}-v{row.version}.npz")},
    )


@router.patch("/{name}/versions/{version}", response_model=VersionOut, responses=ERROR_RESPONSES)
def patch_version(
    name: str,
    version: VersionRef,
    body: VersionPatch,
    principal: PrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> VersionOut:
    """Change a version's settings: `threshold`, the default decision threshold of a binary
    classifier (every prediction route uses it unless the request gives its own)."""
    with database.write_session() as session:
        model = reads.get_model(session, principal.owner, name)
        row = reads.resolve_version(session, model, version)
        head = load_version(session, cache, row).head
        writes.set_threshold(session, row, body.threshold, head)
        return _version_out(session, model, row)


@router.put("/{name}/aliases/{alias}", response_model=AliasOut, responses=ERROR_RESPONSES)
def put_alias(
    name: str,
    alias: AliasName,
    body: AliasRequest,
    principal: PrincipalDep,
    database: DatabaseDep,
) -> AliasOut:
    """Create or move an alias (e.g. promote version 3 to production), or split its traffic
    by weight (`traffic`: a 90/10 canary) and mirror requests to a `shadow` version. Takes
    effect on the next request in every API process."""
    with database.write_session() as session:
        model = reads.get_model(session, principal.owner, name)
        split = None if body.traffic is None else [(s.version, s.weight) for s in body.traffic]
        shadow = None if body.shadow is None else body.shadow.version
        before = outbox.alias_state(session, model.id, alias)
        record = writes.set_alias(session, model, alias, body.version, split=split, shadow=shadow)
        out = _alias_out(session, model, record)
        if before != (record.version_id, record.traffic):
            outbox.record(session, principal.owner, ALIAS_MOVED, out.model_dump(mode="json"))
        return out


@router.get("/{name}/aliases/{alias}", response_model=AliasOut, responses=ERROR_RESPONSES)
def get_alias(name: str, alias: str, principal: PrincipalDep, session: SessionDep) -> AliasOut:
    """An alias: its version, or its split of traffic by weight, and its shadow."""
    model = reads.get_model(session, principal.owner, name)
    return _alias_out(session, model, reads.get_alias(session, model, alias))


def _alias_out(session: Session, model: Model, record: ModelAlias) -> AliasOut:
    routing = traffic.routing(session, record)
    shares = [TrafficShare(version=s.version, weight=s.weight) for s in routing.split]
    return AliasOut(
        model=model.name,
        alias=record.alias,
        version=max(shares, key=lambda s: s.weight).version,
        traffic=shares,
        shadow=routing.shadow,
        updated_at=record.updated_at,
    )


def _traffic(session: Session, model: Model) -> dict[str, AliasTraffic]:
    """alias -> split and shadow, for the aliases that do more than name one version."""
    return {
        alias: AliasTraffic(
            traffic=[TrafficShare(version=s.version, weight=s.weight) for s in r.split],
            shadow=r.shadow,
        )
        for alias, r in traffic.routings(session, model).items()
    }


@router.delete(
    "/{name}/aliases/{alias}", status_code=204, response_class=Response, responses=ERROR_RESPONSES
)
def delete_alias(name: str, alias: str, principal: PrincipalDep, database: DatabaseDep) -> Response:
    """Remove an alias (the version stays)."""
    with database.write_session() as session:
        model = reads.get_model(session, principal.owner, name)
        writes.delete_alias(session, model, alias)
    return Response(status_code=204)


@router.delete("/{name}", status_code=204, response_class=Response, responses=ERROR_RESPONSES)
def delete_model(
    name: str, principal: PrincipalDep, database: DatabaseDep, cache: ModelCacheDep
) -> Response:
    """Delete a model with all its versions and aliases."""
    with database.write_session() as session:
        model = reads.get_model(session, principal.owner, name)
        evicted = writes.delete_model(session, model)
    cache.invalidate(evicted)
    return Response(status_code=204)


@router.delete(
    "/{name}/versions/{version}",
    status_code=204,
    response_class=Response,
    responses=ERROR_RESPONSES,
)
def delete_version(
    name: str,
    version: VersionNumber,
    principal: PrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> Response:
    """Delete one version (409 while an alias points at it)."""
    with database.write_session() as session:
        model = reads.get_model(session, principal.owner, name)
        evicted = writes.delete_version(session, model, version)
    cache.invalidate([evicted])
    return Response(status_code=204)


class _NoFields(BaseModel):
    """A model-file upload has no text fields."""

    model_config = {"extra": "forbid"}


@upload_router.post(
    "/{name}/versions",
    status_code=201,
    response_model=VersionOut,
    responses=ERROR_RESPONSES,
    openapi_extra=multipart_body(
        _NoFields, {"file": "An nn-core model file (as downloaded)"}, ("file",)
    ),
)
async def upload_version(
    name: str,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> VersionOut:
    """Add a version from an nn-core model file (multipart field `file`).

    The file is loaded in full and checked against its own spec and the parameter limit;
    a broken, tampered or oversized file answers 4xx and nothing is stored. The model is
    created if it does not exist yet.
    """
    check_model_name(name)
    async with uploaded_form(request, max_files=1, max_fields=0) as form:
        upload = form_file(form, "file", required=True)
        assert upload is not None
        form_fields(_NoFields, form, exclude=("file",))
        data = await read_upload(upload, settings.max_upload_bytes, "file")
    out = await run_in_threadpool(_store_version, database, settings, principal.owner, name, data)
    response.headers["Location"] = f"/v1/models/{quote(name)}/versions/{out.version}"
    return out


def _store_version(
    database: Database, settings: Settings, owner: str, name: str, data: bytes
) -> VersionOut:
    model = validate_model_file(data, settings.max_model_params)
    with database.write_session() as session:
        row = writes.add_version(
            session, owner=owner, name=name, spec=model_to_spec(model), metrics=None, weights=data
        )
        record = reads.get_model(session, owner, name)
        return _version_out(session, record, row)


# ----------------------------------------------------------------------------- shapes


def _versions(session: Session, model: Model) -> list[VersionOut]:
    sizes = reads.weight_sizes(session, model)
    by_version = _aliases_by_version(session, model)
    lineage = reads.lineage_of(session, model)
    return [
        _out(model, row, by_version.get(row.version, []), sizes.get(row.id, 0), lineage)
        for row in reads.versions_of(session, model)
    ]


def _version_out(session: Session, model: Model, row: ModelVersion) -> VersionOut:
    sizes = reads.weight_sizes(session, model)
    aliases = _aliases_by_version(session, model).get(row.version, [])
    return _out(model, row, aliases, sizes.get(row.id, 0), reads.lineage_of(session, model))


def _aliases_by_version(session: Session, model: Model) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for alias, version in reads.aliases_of(session, model).items():
        grouped.setdefault(version, []).append(alias)
    return grouped


def _out(
    model: Model,
    row: ModelVersion,
    aliases: list[str],
    size: int,
    lineage: dict[int, dict[str, str | None]],
) -> VersionOut:
    summary = reads.spec_summary(row.spec)
    input_dim = summary.get("input_dim")
    loss = summary.get("loss")
    return VersionOut(
        model=model.name,
        version=row.version,
        created_at=row.created_at,
        job_id=row.job_id,
        aliases=aliases,
        metrics=row.metrics,
        input_dim=input_dim if isinstance(input_dim, int) else None,
        loss=loss if isinstance(loss, str) else None,
        size_bytes=size,
        threshold=row.threshold,
        sweep_id=row.sweep_id,
        sweep_params=row.sweep_params,
        **lineage.get(row.id, {}),
    )
