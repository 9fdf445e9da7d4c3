"""Dataset arrays live in blob files under the data dir, not in the database: a large upload
leaves the SQLite file and its WAL small, trains end to end, a damaged file is a clear error
naming the dataset, identical uploads share a file that goes with its last row, and rows
stored in the database column (before 0008, or NNS_DATASET_STORAGE=database) still load.
Real app over ASGI, real SQLite files, real files."""

from __future__ import annotations

import hashlib
import io
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from jobs_helpers import TERMINAL, wait_for_job, xor_spec
from service_helpers import bearer, settings_on_copy
from sqlalchemy import select
from sqlalchemy.orm import undefer

from service import auth, blobs, dataset_blobs
from service.app import create_app
from service.config import Settings
from service.dataset_blobs import blob_root
from service.datasets_store import encode_arrays, load_training_data
from service.db import Database
from service.models import Dataset, DatasetSource

pytestmark = pytest.mark.anyio

MiB = 1 << 20


@asynccontextmanager
async def _service(
    tmp_path: Path, migrated_sqlite: Path, *, runner: bool = False, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings, Database]]:
    """A started app on its own SQLite file (a copy of the migrated one), as alice."""
    settings = settings_on_copy(migrated_sqlite, tmp_path, **overrides)
    app = create_app(settings, start_runner=runner)
    async with app.router.lifespan_context(app):
        database: Database = app.state.db
        headers = bearer(auth.create_key(database, "alice", admin=True).key)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers, timeout=60
        ) as http:
            yield http, settings, database


def _db_files(settings: Settings) -> list[Path]:
    """The SQLite database and its write-ahead log (and shared memory), as on disk."""
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return [p for p in path.parent.glob(path.name + "*") if p.is_file()]


def _npz(x: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, X=x, y=y)
    return buffer.getvalue()


def _small_csv(n: int = 80, seed: int = 3) -> bytes:
    """Two features, class 1 when x0 + x1 > 0: a tiny model learns it in a few epochs."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2)).round(4)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    lines = ["a,b,label", *(f"{a},{b},{c}" for (a, b), c in zip(x.tolist(), y, strict=True))]
    return ("\n".join(lines) + "\n").encode()


async def _upload(http: httpx.AsyncClient, name: str, data: bytes, file: str) -> dict[str, Any]:
    fields = {"name": name} | ({"label_column": "label"} if file.endswith(".csv") else {})
    response = await http.post("/v1/datasets", files={"file": (file, data)}, data=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _row(database: Database, dataset_id: str) -> Dataset:
    with database.session() as session:
        row = session.get(Dataset, dataset_id, options=[undefer(Dataset.data)])
        assert row is not None
        return row


def _blob_file(settings: Settings, row: Dataset) -> Path:
    assert row.storage == "file" and row.data_sha256 is not None
    return blobs.blob_path(blob_root(settings), row.data_sha256)


# ----------------------------------------------------------------------------- storage


async def test_a_large_upload_goes_to_a_private_blob_file_not_the_database(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    rng = np.random.default_rng(20261125)
    x = rng.standard_normal((4096, 64))  # 2 MiB of float64 no other test has
    y = (x[:, 0] > 0).astype(np.int64)
    async with _service(tmp_path, migrated_sqlite) as (http, settings, database):
        before = sum(p.stat().st_size for p in _db_files(settings))
        uploaded = await _upload(http, "big", _npz(x, y), "big.npz")
        grown = sum(p.stat().st_size for p in _db_files(settings)) - before
        assert grown < 256 * 1024, grown  # the row, not the 2 MiB

        row = _row(database, uploaded["id"])
        path = _blob_file(settings, row)
        data = path.read_bytes()
        assert row.data is None and row.size_bytes == len(data) == uploaded["size_bytes"]
        assert hashlib.sha256(data).hexdigest() == row.data_sha256
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(blob_root(settings).stat().st_mode) == 0o700
        assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

        distinctive = x[2048].tobytes()  # one row's 512 bytes, as the npz holds them
        assert distinctive in data
        for db_file in _db_files(settings):
            assert distinctive not in db_file.read_bytes(), db_file

        with database.session() as session:
            loaded = load_training_data(session, settings, "alice", "big")
        stored = np.concatenate([loaded.X_train, loaded.X_test])
        assert sorted(map(bytes, stored)) == sorted(map(bytes, x))


async def _train_on_halves(http: httpx.AsyncClient) -> dict[str, Any]:
    """Submit a short job on the upload "halves" and wait for its end."""
    submitted = await http.post(
        "/v1/jobs",
        json={"dataset": "halves", "model_name": "halves", "spec": xor_spec(epochs=5)},
    )
    assert submitted.status_code == 202, submitted.text
    job: dict[str, Any] = await wait_for_job(
        http, submitted.json()["id"], lambda j: j["status"] in TERMINAL, timeout=120
    )
    return job


async def test_training_on_a_file_stored_upload_succeeds(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    async with _service(tmp_path, migrated_sqlite, runner=True) as (http, settings, database):
        uploaded = await _upload(http, "halves", _small_csv(), "halves.csv")
        assert _blob_file(settings, _row(database, uploaded["id"])).is_file()
        job = await _train_on_halves(http)
        assert job["status"] == "succeeded", job
        split = await http.get("/v1/datasets/halves/split/test")
        assert split.status_code == 200 and split.text.startswith("row,a,b,label\n")


async def test_identical_uploads_share_a_file_that_goes_with_the_last(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    async with _service(tmp_path, migrated_sqlite) as (http, settings, database):
        first = await _upload(http, "one", _small_csv(), "one.csv")
        second = await _upload(http, "two", _small_csv(), "one.csv")  # same file, other name
        path_one = _blob_file(settings, _row(database, first["id"]))
        assert path_one == _blob_file(settings, _row(database, second["id"]))

        assert (await http.delete("/v1/datasets/one")).status_code == 204
        assert path_one.is_file()  # "two" still needs it
        assert (await http.get("/v1/datasets/two/split/train")).status_code == 200
        assert (await http.delete("/v1/datasets/two")).status_code == 204
        assert not path_one.exists()


async def test_a_file_whose_insert_failed_is_discarded_unless_referenced(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    """What the upload route does when its insert transaction fails after the file was
    written: the file goes, unless a committed row has the same bytes."""
    async with _service(tmp_path, migrated_sqlite) as (http, settings, database):
        with pytest.raises(RuntimeError), database.write_session() as session:
            orphan = dataset_blobs.store(session, settings, b"never committed")
            raise RuntimeError("the insert failed")
        assert orphan.data_sha256 is not None
        orphan_path = blobs.blob_path(blob_root(settings), orphan.data_sha256)
        assert orphan_path.is_file()
        dataset_blobs.discard_if_orphaned(database, settings, orphan)
        assert not orphan_path.exists()

        kept = _row(database, (await _upload(http, "halves", _small_csv(), "h.csv"))["id"])
        data = dataset_blobs.read(settings, kept)
        with pytest.raises(RuntimeError), database.write_session() as session:
            again = dataset_blobs.store(session, settings, data)
            raise RuntimeError("the insert failed")
        dataset_blobs.discard_if_orphaned(database, settings, again)
        assert _blob_file(settings, kept).is_file()


# ----------------------------------------------------------------------------- damage


async def test_a_tampered_blob_fails_the_job_and_the_download_clearly(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    async with _service(tmp_path, migrated_sqlite, runner=True) as (http, settings, database):
        uploaded = await _upload(http, "halves", _small_csv(), "halves.csv")
        path = _blob_file(settings, _row(database, uploaded["id"]))
        damaged = bytearray(path.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF  # same size, other bytes
        path.write_bytes(bytes(damaged))

        download = await http.get("/v1/datasets/halves/split/train")
        assert download.status_code == 409, download.text
        error = download.json()["error"]
        assert error["type"] == "dataset_corrupt"
        assert "'halves'" in error["message"] and "altered" in error["message"]

        job = await _train_on_halves(http)
        assert job["status"] == "failed", job
        assert "dataset 'halves'" in job["failure_reason"]
        assert "upload it again" in job["failure_reason"]

        path.unlink()
        missing = await http.get("/v1/datasets/halves/split/test")
        assert missing.status_code == 409, missing.text
        assert "is missing" in missing.json()["error"]["message"]
        assert (await http.delete("/v1/datasets/halves")).status_code == 204


async def test_uploading_the_same_bytes_again_repairs_a_damaged_file(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    async with _service(tmp_path, migrated_sqlite) as (http, settings, database):
        uploaded = await _upload(http, "halves", _small_csv(), "halves.csv")
        path = _blob_file(settings, _row(database, uploaded["id"]))
        path.write_bytes(b"truncated")
        await _upload(http, "again", _small_csv(), "halves.csv")
        assert (await http.get("/v1/datasets/halves/split/train")).status_code == 200


# ----------------------------------------------------------------------------- database rows


async def test_rows_stored_in_the_database_still_load(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    """A row from before 0008 (storage "database", the npz in `data`) trains and downloads."""
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]] * 10)
    y = np.array([0, 1, 0, 1] * 10, dtype=np.int64)
    blob = encode_arrays(x, y, {"format": "npz"})
    async with _service(tmp_path, migrated_sqlite) as (http, settings, database):
        with database.write_session() as session:
            session.add(
                Dataset(
                    id="ds_legacy",
                    owner="alice",
                    name="legacy",
                    source=DatasetSource.UPLOAD.value,
                    format="npz",
                    task="classification",
                    n_rows=40,
                    n_features=2,
                    classes=[0, 1],
                    class_balance={"0": 20, "1": 20},
                    test_fraction=0.25,
                    data=blob,
                    size_bytes=len(blob),
                )
            )
        assert _row(database, "ds_legacy").storage == "database"
        with database.session() as session:
            loaded = load_training_data(session, settings, "alice", "legacy")
        assert len(loaded.X_train) + len(loaded.X_test) == 40
        split = await http.get("/v1/datasets/legacy/split/test")
        assert split.status_code == 200, split.text
        assert len(split.text.strip().splitlines()) == 1 + 10
        assert (await http.delete("/v1/datasets/legacy")).status_code == 204


async def test_database_storage_setting_keeps_new_uploads_in_the_column(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    async with _service(tmp_path, migrated_sqlite, dataset_storage="database") as (
        http,
        settings,
        database,
    ):
        uploaded = await _upload(http, "halves", _small_csv(), "halves.csv")
        with database.session() as session:
            row = session.scalars(select(Dataset).where(Dataset.id == uploaded["id"])).one()
            assert row.storage == "database" and row.data_sha256 is None
            assert row.data is not None and len(row.data) == uploaded["size_bytes"]
        assert not blob_root(settings).exists()
        assert (await http.get("/v1/datasets/halves/split/train")).status_code == 200


# ----------------------------------------------------------------------------- the store itself


def test_blob_store_writes_once_checks_on_read_and_deletes(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    ref = blobs.put(root, b"some bytes")
    assert ref == blobs.BlobRef(hashlib.sha256(b"some bytes").hexdigest(), 10)
    path = blobs.blob_path(root, ref.sha256)
    assert path == root / ref.sha256[:2] / ref.sha256
    mtime = path.stat().st_mtime_ns
    assert blobs.put(root, b"some bytes") == ref and path.stat().st_mtime_ns == mtime
    assert blobs.read(root, ref) == b"some bytes"

    path.write_bytes(b"some bytez")
    with pytest.raises(blobs.BlobError, match="altered"):
        blobs.read(root, ref)
    path.write_bytes(b"short")
    with pytest.raises(blobs.BlobError, match="5 bytes, 10 were stored"):
        blobs.read(root, ref)
    blobs.delete(root, ref.sha256)
    with pytest.raises(blobs.BlobError, match="missing"):
        blobs.read(root, ref)
    with pytest.raises(blobs.BlobError, match="not a SHA-256"):
        blobs.blob_path(root, "../../etc/passwd")
