"""/v1/datasets: the built-in catalog plus each owner's uploads (CSV, NPZ, IDX, text).

The upload route lives on its own router so the app can give it the upload size limit
(settings.max_upload_bytes) instead of the small JSON body limit; see service/api/routes.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from nn_core.datasets.catalog import DatasetInfo
from nn_core.datasets.loaders import ParseCancelled
from service import dataset_blobs, quotas
from service import datasets_store as store
from service.api.disconnect import run_in_thread_until_gone
from service.api.errors import ERROR_RESPONSES
from service.api.forms import form_fields, form_file, multipart_body, read_upload, uploaded_form
from service.api.headers import attachment
from service.auth import PrincipalDep
from service.config import Settings
from service.dataset_files import ParsedDataset, ReadOptions, UploadPart, parse_upload
from service.dataset_splits import split_csv
from service.db import Database
from service.deps import DatabaseDep, SessionDep, SettingsDep
from service.errors import BadRequest, Conflict, invalid
from service.models import Dataset, DatasetSource
from service.schemas.datasets import DatasetList, DatasetOut, DatasetUploadFields

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
upload_router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

_UPLOAD_FILES = {
    "file": "The data: a .csv, .npz, label<TAB>text file, or the IDX images; each may be "
    "gzip-compressed (.gz) or the one file in a .zip",
    "labels": "IDX only: the labels file matching the images",
    "test_file": "Optional: your own test split, in the same format and columns; used as is "
    "(then test_fraction must be 0 or absent)",
    "test_labels": "IDX only: the labels of test_file",
}
_FILE_PARTS = tuple(_UPLOAD_FILES)


@router.get("", response_model=DatasetList, responses=ERROR_RESPONSES)
def list_datasets(
    principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> DatasetList:
    """Every built-in dataset (with whether it is usable offline now), then your uploads."""
    builtins = [_from_catalog(info) for info in store.list_catalog(settings)]
    uploads = [_from_upload(row) for row in store.list_uploads(session, principal.owner)]
    return DatasetList(datasets=builtins + uploads)


@router.get("/{ref}", response_model=DatasetOut, responses=ERROR_RESPONSES)
def get_dataset(
    ref: str, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> DatasetOut:
    """One dataset by upload id, upload name or built-in name: size, task, classes, balance."""
    upload = store.find_upload(session, principal.owner, ref)
    if upload is not None:
        return _from_upload(upload)
    return _from_catalog(store.catalog_info(settings, ref))


@router.get(
    "/{ref}/split/{part}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "One line per row: `row` (0-based data row in the uploaded file, "
            "or in the test_file for its rows; the header row is not counted), the features, "
            "then the label",
        },
        **ERROR_RESPONSES,
    },
)
def download_split(
    ref: str,
    part: Literal["train", "test"],
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    test_fraction: Annotated[
        float | None,
        Query(
            gt=0.0,
            lt=1.0,
            description="The test_fraction a job overrode (default: the upload's own split)",
        ),
    ] = None,
) -> StreamingResponse:
    """The rows of an upload's train or test split as CSV: exactly the rows a job trains and
    is tested on (the split is seeded, so it is the same for every job)."""
    upload = _own_upload(
        session, principal.owner, ref, "; only uploads have a downloadable split", with_data=True
    )
    if test_fraction is not None and upload.n_test_rows:
        raise invalid(
            "test_fraction",
            "the dataset has its own test_file",
            summary="this upload came with its own test split; test_fraction does not apply",
        )
    arrays = store.upload_arrays(settings, upload)
    filename = f"{upload.name}-{part}.csv"
    return StreamingResponse(
        split_csv(upload, arrays, part, test_fraction),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": attachment(filename)},
    )


@router.delete("/{ref}", status_code=204, response_class=Response, responses=ERROR_RESPONSES)
def delete_dataset(
    ref: str, principal: PrincipalDep, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """Delete one of your uploads (jobs that used it keep their results); its stored file
    goes too unless another upload has the same bytes."""
    with database.write_session() as session:
        upload = _own_upload(session, principal.owner, ref, " and cannot be deleted")
        session.delete(upload)
        session.flush()
        dataset_blobs.release(session, settings, upload)
    return Response(status_code=204)


@upload_router.post(
    "",
    status_code=201,
    response_model=DatasetOut,
    responses=ERROR_RESPONSES,
    openapi_extra=multipart_body(DatasetUploadFields, _UPLOAD_FILES, ("file",)),
)
async def upload_dataset(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> DatasetOut:
    """Upload a dataset as multipart/form-data; it is parsed, checked and stored normalized.

    CSV needs `label_column`; NPZ holds arrays `X` and `y` (no object arrays); IDX takes the
    images as `file` and the labels as `labels`; text is `label<TAB>text` per line. The format
    is inferred from the file name unless `format` is given. Malformed files answer 400/422
    naming the field (and line or column); nothing is stored then.
    """
    async with uploaded_form(request, max_files=4, max_fields=10) as form:
        upload = await _read_dataset_form(form, settings.max_upload_bytes)
    row = await run_in_thread_until_gone(
        request, partial(_parse_and_store, database, settings, principal.owner, upload)
    )
    response.headers["Location"] = f"/v1/datasets/{row.id}"
    return _from_upload(row)


@dataclass
class _Upload:
    """A dataset upload as read from the form, before parsing."""

    name: str
    fields: DatasetUploadFields
    parts: dict[str, UploadPart]


async def _read_dataset_form(form: FormData, limit: int) -> _Upload:
    """Check the text fields, then read the file parts (each up to the upload limit)."""
    file = form_file(form, "file", required=True)
    assert file is not None
    fields = form_fields(DatasetUploadFields, form, exclude=_FILE_PARTS)
    name = fields.name or _default_name(file.filename)
    _check_name(name)
    parts: dict[str, UploadPart] = {}
    for part in _FILE_PARTS:
        upload = form_file(form, part, required=False)
        if upload is not None:
            data = await read_upload(upload, limit, part)
            parts[part] = UploadPart(part, data, upload.filename or None)
    return _Upload(name=name, fields=fields, parts=parts)


def _parse_and_store(
    database: Database,
    settings: Settings,
    owner: str,
    upload: _Upload,
    gone: Callable[[], bool],
) -> Dataset:
    """CPU-bound parsing and the insert, off the event loop; nothing is written on error.

    The quota is checked before parsing (a full quota costs no parsing) and again, with the
    stored size, in the transaction that inserts the row (the check that counts). Parsing
    stops once `gone` says the client has disconnected: nobody would read the answer.
    """
    fields, name, parts = upload.fields, upload.name, upload.parts
    with database.session() as session:
        quotas.check_dataset_quota(session, settings, owner, 0)
    options = ReadOptions(fields.format, fields.label_column, fields.header, fields.test_fraction)
    try:
        parsed = parse_upload(
            parts["file"],
            options,
            labels=parts.get("labels"),
            test_file=parts.get("test_file"),
            test_labels=parts.get("test_labels"),
            max_bytes=settings.max_dataset_bytes,
            cancelled=gone,
        )
    except ParseCancelled:
        raise BadRequest(
            "the client disconnected while the upload was parsed; nothing was stored"
        ) from None
    fmt = str(parsed.meta["format"])
    meta = {
        **parsed.meta,
        "files": [f["name"] for f in parsed.file_info["files"] if f["name"]],
        "upload_bytes": sum(len(part.data) for part in parts.values()),
    }
    blob = store.encode_arrays(parsed.x, parsed.y, meta)
    stored: dataset_blobs.StoredData | None = None
    try:
        with database.write_session() as session:
            quotas.lock_owner(session, owner)
            if store.find_upload(session, owner, name) is not None:
                raise Conflict.for_field(
                    "body.name",
                    "already exists",
                    summary=f"you already have a dataset named {name!r}; "
                    "pick another name or delete it",
                )
            quotas.check_dataset_quota(session, settings, owner, len(blob))
            stored = dataset_blobs.store(session, settings, blob)
            fraction = options.fraction("test_file" in parts)
            row = _new_row(owner, name, fmt, fraction, parsed, stored)
            session.add(row)
            session.flush()
    except BaseException:
        if stored is not None:  # the row was not committed: drop a file nothing references
            dataset_blobs.discard_if_orphaned(database, settings, stored)
        raise
    return row


def _new_row(
    owner: str,
    name: str,
    fmt: str,
    test_fraction: float,
    parsed: ParsedDataset,
    stored: dataset_blobs.StoredData,
) -> Dataset:
    return Dataset(
        owner=owner,
        name=name,
        source=DatasetSource.UPLOAD.value,
        format=fmt,
        task=parsed.task,
        n_rows=parsed.n_rows,
        n_features=parsed.n_features,
        classes=parsed.classes,
        class_balance=parsed.class_balance,
        test_fraction=test_fraction,
        data=stored.data,
        size_bytes=stored.size_bytes,
        storage=stored.storage,
        data_sha256=stored.data_sha256,
        sha256=parsed.file_info["files"][0]["sha256"],
        test_sha256=next(
            (f["sha256"] for f in parsed.file_info["files"] if f["part"] == "test_file"), None
        ),
        n_test_rows=parsed.n_test_rows or None,
        file_info=parsed.file_info,
    )


def _default_name(filename: str | None) -> str:
    """The file name without directories or extensions (".csv", ".npz", ".gz" ...)."""
    base = PurePosixPath((filename or "").replace("\\", "/")).name
    stem = base.split(".", 1)[0].strip()
    if not stem:
        raise invalid(
            "body.name", "required", summary="the file has no usable name; send a name field"
        )
    return stem[:100]


def _own_upload(
    session: Session, owner: str, ref: str, why_not_builtin: str, *, with_data: bool = False
) -> Dataset:
    """The owner's upload `ref`; a built-in name is 409 (`why_not_builtin` ends its summary),
    anything else 404."""
    upload = store.find_upload(session, owner, ref, with_data=with_data)
    if upload is not None:
        return upload
    if store.is_catalog_name(ref):
        raise Conflict.for_field(
            "dataset", "built-in", summary=f"{ref!r} is a built-in dataset{why_not_builtin}"
        )
    raise store.not_found(ref)


def _check_name(name: str) -> None:
    if store.is_catalog_name(name):
        raise Conflict.for_field(
            "body.name",
            "taken by a built-in dataset",
            summary=f"{name!r} is the name of a built-in dataset; pick another name",
        )
    bad = name.startswith("ds_") or any(ord(c) < 32 or c in "/\\\x7f" for c in name)
    if bad:
        raise invalid(
            "body.name",
            "invalid name",
            summary=f"invalid dataset name {name[:100]!r}: no control characters or slashes, "
            "and no 'ds_' prefix (reserved for ids)",
        )


# ----------------------------------------------------------------------------- shapes


def _from_upload(row: Dataset) -> DatasetOut:
    n_train, n_test = store.split_sizes(row)
    info = row.file_info or {}
    meta_names = info.get("feature_names")
    return DatasetOut(
        id=row.id,
        name=row.name,
        source="upload",
        task=row.task,
        format=row.format,
        available=True,
        n_rows=row.n_rows,
        n_train=n_train,
        n_test=n_test,
        n_features=None if row.task == store.TASK_TEXT else row.n_features,
        classes=row.classes,
        class_balance=row.class_balance,
        test_fraction=row.test_fraction,
        test_split=_test_split(row),
        sha256=row.sha256,
        test_sha256=row.test_sha256,
        label_column=info.get("label_column"),
        header=info.get("header"),
        feature_names=meta_names if isinstance(meta_names, list) else None,
        compression=info.get("compression"),
        files=info.get("files"),
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


def _test_split(row: Dataset) -> Literal["fraction", "test_file", "none"]:
    if row.n_test_rows:
        return "test_file"
    return "none" if row.test_fraction == 0 else "fraction"


def _from_catalog(info: DatasetInfo) -> DatasetOut:
    return DatasetOut(
        id=info.name,
        name=info.name,
        source="builtin",
        task=info.kind,
        description=info.description,
        available=info.available,
        n_rows=info.n_train + info.n_test,
        n_train=info.n_train,
        n_test=info.n_test,
        n_features=info.n_features,
        classes=list(info.classes),
        class_names=list(info.class_names),
    )
