"""/v1/datasets: the built-in catalog plus each owner's uploads (CSV, NPZ, IDX, text).

The upload route lives on its own router so the app can give it the upload size limit
(settings.max_upload_bytes) instead of the small JSON body limit; see service/api/routes.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from nn_core.datasets.catalog import DatasetInfo
from service import datasets_store as store
from service.api.errors import ERROR_RESPONSES
from service.api.forms import form_fields, form_file, multipart_body, read_upload, uploaded_form
from service.auth import PrincipalDep
from service.dataset_files import ParsedDataset, infer_format, parse_upload
from service.db import Database
from service.deps import DatabaseDep, SessionDep, SettingsDep
from service.errors import Conflict, invalid
from service.models import Dataset, DatasetSource
from service.schemas.datasets import DatasetList, DatasetOut, DatasetUploadFields

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
upload_router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

_UPLOAD_FILES = {
    "file": "The data: a .csv, .npz, label<TAB>text file, or the IDX images",
    "labels": "IDX only: the labels file matching the images",
}


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


@router.delete("/{ref}", status_code=204, response_class=Response, responses=ERROR_RESPONSES)
def delete_dataset(ref: str, principal: PrincipalDep, database: DatabaseDep) -> Response:
    """Delete one of your uploads (jobs that used it keep their results)."""
    with database.write_session() as session:
        upload = store.find_upload(session, principal.owner, ref)
        if upload is None:
            if store.is_catalog_name(ref):
                raise Conflict.for_field(
                    "dataset",
                    "built-in",
                    summary=f"{ref!r} is a built-in dataset and cannot be deleted",
                )
            raise store.not_found(ref)
        session.delete(upload)
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
    async with uploaded_form(request, max_files=2, max_fields=8) as form:
        upload = await _read_dataset_form(form, settings.max_upload_bytes)
    row = await run_in_threadpool(_parse_and_store, database, principal.owner, upload)
    response.headers["Location"] = f"/v1/datasets/{row.id}"
    return _from_upload(row)


@dataclass
class _Upload:
    """A dataset upload as read from the form, before parsing."""

    name: str
    format: str
    fields: DatasetUploadFields
    data: bytes
    labels: bytes | None
    files: list[str]


async def _read_dataset_form(form: FormData, limit: int) -> _Upload:
    """Check the form's fields against each other, then read the file parts."""
    file = form_file(form, "file", required=True)
    assert file is not None
    labels = form_file(form, "labels", required=False)
    fields = form_fields(DatasetUploadFields, form, exclude=("file", "labels"))
    fmt = fields.format or infer_format(file.filename, labels is not None)
    if fmt is None:
        raise invalid(
            "body.format",
            "required",
            summary=f"cannot tell the format of {file.filename or 'the file'!r}; send format "
            "(csv, npz, idx or text)",
        )
    if labels is not None and fmt != "idx":
        raise invalid(
            "body.labels",
            "only for format idx",
            summary="a separate labels file is only used by the idx format",
        )
    name = fields.name or _default_name(file.filename)
    _check_name(name)
    return _Upload(
        name=name,
        format=fmt,
        fields=fields,
        data=await read_upload(file, limit, "file"),
        labels=await read_upload(labels, limit, "labels") if labels else None,
        files=[f.filename for f in (file, labels) if f is not None and f.filename],
    )


def _parse_and_store(database: Database, owner: str, upload: _Upload) -> Dataset:
    """CPU-bound parsing and the insert, off the event loop; nothing is written on error."""
    fields, name = upload.fields, upload.name
    parsed = parse_upload(
        upload.format,
        upload.data,
        test_fraction=fields.test_fraction,
        label_column=fields.label_column,
        labels=upload.labels,
    )
    meta = {
        **parsed.meta,
        "format": upload.format,
        "files": upload.files,
        "upload_bytes": len(upload.data) + len(upload.labels or b""),
    }
    blob = store.encode_arrays(parsed.x, parsed.y, meta)
    with database.write_session() as session:
        if store.find_upload(session, owner, name) is not None:
            raise Conflict.for_field(
                "body.name",
                "already exists",
                summary=f"you already have a dataset named {name!r}; "
                "pick another name or delete it",
            )
        row = _new_row(owner, name, upload.format, fields.test_fraction, parsed, blob)
        session.add(row)
        session.flush()
    return row


def _new_row(
    owner: str, name: str, fmt: str, test_fraction: float, parsed: ParsedDataset, blob: bytes
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
        data=blob,
        size_bytes=len(blob),
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
    fraction = row.test_fraction if row.test_fraction is not None else store.DEFAULT_TEST_FRACTION
    n_train, n_test = store.split_sizes(row.task, row.n_rows, row.class_balance, fraction)
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
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


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
