"""Upload size and storage quotas: what an upload decodes to is capped before it is decoded,
and each owner's stored datasets are capped in bytes and in number (NNS_MAX_DATASET_BYTES,
NNS_DATASET_QUOTA_BYTES, NNS_DATASET_QUOTA_COUNT). Real app over ASGI, real SQLite files."""

from __future__ import annotations

import asyncio
import gzip
import io
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from service_helpers import bearer, settings_on_copy
from sqlalchemy import func, select

from service import auth
from service.app import create_app
from service.config import Settings
from service.db import Database
from service.models import Dataset

pytestmark = pytest.mark.anyio

CSV = b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, i * 2, i % 2) for i in range(40))
MiB = 1 << 20

Keys = dict[str, dict[str, str]]


@asynccontextmanager
async def _service(
    tmp_path: Path, migrated_sqlite: Path, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Keys, Settings]]:
    """A started app on its own SQLite file (a copy of the migrated one), keys for two owners."""
    settings = settings_on_copy(migrated_sqlite, tmp_path, **overrides)
    app = create_app(settings, start_runner=False)
    async with app.router.lifespan_context(app):
        database: Database = app.state.db
        keys = {owner: bearer(auth.create_key(database, owner).key) for owner in ("alice", "bob")}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, keys, settings


def _db_bytes(settings: Settings) -> int:
    """The SQLite database and its write-ahead log together, as on disk."""
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def _rows(settings: Settings) -> int:
    database = Database(settings)
    try:
        with database.session() as session:
            return int(session.scalar(select(func.count()).select_from(Dataset)) or 0)
    finally:
        database.dispose()


async def _upload(
    http: httpx.AsyncClient, headers: dict[str, str], name: str, data: bytes = CSV, **files: Any
) -> httpx.Response:
    parts = {"file": (files.pop("filename", "d.csv"), data), **files}
    return await http.post("/v1/datasets", headers=headers, files=parts, data={"name": name})


def _detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == ["file"], response.json()
    return str(details[0]["message"])


def _deflated_zeros_npz(rows: int, cols: int) -> bytes:
    """np.savez_compressed's layout for float64 zeros X (rows x cols) and y, written in chunks
    so the test itself never holds the declared array."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, shape in (("X.npy", (rows, cols)), ("y.npy", (rows,))):
            header = {"descr": "<f8", "fortran_order": False, "shape": shape}
            with archive.open(name, "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(member, header)
                left = int(np.prod(shape)) * 8
                chunk = bytes(min(left, 4 * MiB))
                while left:
                    member.write(chunk[: min(left, len(chunk))])
                    left -= min(left, len(chunk))
    return out.getvalue()


# ----------------------------------------------------------------------------- decoded size


async def test_deflated_zeros_npz_is_413_from_its_headers(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    """The finding: well under 1 MB on the wire declaring ~300 MB of arrays (the report's
    was 800 MB and grew the database by 1.6 GB). Default settings: refused from the zip
    directory and .npy headers, naming file and both figures; the database does not grow."""
    bomb = _deflated_zeros_npz(390_000, 100)
    assert len(bomb) < 1 * MiB
    async with _service(tmp_path, migrated_sqlite) as (http, keys, settings):
        assert settings.max_dataset_bytes == 256 * MiB
        before = _db_bytes(settings)
        response = await _upload(http, keys["alice"], "bomb", bomb, filename="bomb.npz")
        message = _detail(response, 413)
        assert "315,120,000 bytes" in message and "268,435,456-byte limit" in message
        assert "NNS_MAX_DATASET_BYTES" in response.json()["error"]["message"]
        assert _db_bytes(settings) - before < 1 * MiB
        assert (await http.get("/v1/datasets/bomb", headers=keys["alice"])).status_code == 404
    assert _rows(settings) == 0


@pytest.mark.parametrize(
    ("pack", "filename"),
    [
        (gzip.compress, "big.csv.gz"),
        (lambda data: _one_file_zip("big.csv", data), "big.zip"),
    ],
    ids=["gzip", "zip"],
)
async def test_archives_stop_unpacking_at_the_limit(
    tmp_path: Path, migrated_sqlite: Path, pack: Callable[[bytes], bytes], filename: str
) -> None:
    big = CSV + b"1,2,0\n" * 200_000  # 1.2 MB of CSV
    async with _service(tmp_path, migrated_sqlite, max_dataset_bytes=MiB) as (http, keys, _):
        response = await _upload(http, keys["alice"], "big", pack(big), filename=filename)
        assert "1,048,576" in _detail(response, 413)
        small = await _upload(http, keys["alice"], "small", pack(CSV), filename=filename)
        assert small.status_code == 201, small.text


async def test_test_file_over_the_limit_names_test_file(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    big = gzip.compress(CSV + b"1,2,0\n" * 200_000)
    async with _service(tmp_path, migrated_sqlite, max_dataset_bytes=MiB) as (http, keys, _):
        response = await _upload(
            http, keys["alice"], "t", CSV, test_file=("test.csv.gz", big), filename="d.csv"
        )
        assert response.status_code == 413, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == ["test_file"]


def _one_file_zip(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


# ----------------------------------------------------------------------------- quotas


async def _stored_size(tmp_path: Path, migrated_sqlite: Path) -> int:
    """What CSV takes once stored (the quota counts stored bytes, not the bytes sent)."""
    async with _service(tmp_path / "probe", migrated_sqlite) as (http, keys, _):
        response = await _upload(http, keys["alice"], "probe")
        assert response.status_code == 201, response.text
        return int(response.json()["size_bytes"])


async def test_byte_quota_is_413_with_the_figures_per_owner(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    size = await _stored_size(tmp_path, migrated_sqlite)
    quota = 2 * size - 1  # room for one upload, not two
    async with _service(tmp_path, migrated_sqlite, dataset_quota_bytes=quota) as (
        http,
        keys,
        settings,
    ):
        alice, bob = keys["alice"], keys["bob"]
        first = await _upload(http, alice, "first")
        assert first.status_code == 201, first.text
        refused = await _upload(http, alice, "second")
        message = _detail(refused, 413)
        assert f"you store {size:,} bytes" in message
        assert f"needs {size:,} more" in message and f"quota of {quota:,}" in message
        assert refused.json()["error"]["type"] == "dataset_quota_exceeded"
        # Nothing stored by the refusal; the first dataset is intact.
        assert _rows(settings) == 1
        kept = await http.get("/v1/datasets/first", headers=alice)
        assert kept.status_code == 200 and kept.json()["size_bytes"] == size
        # Another owner has a quota of their own.
        assert (await _upload(http, bob, "second")).status_code == 201
        # Deleting frees the space at once.
        deleted = await http.delete("/v1/datasets/first", headers=alice)
        assert deleted.status_code == 204
        assert (await _upload(http, alice, "second")).status_code == 201


async def test_count_quota_is_429_with_the_figures_per_owner(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    async with _service(tmp_path, migrated_sqlite, dataset_quota_count=2) as (
        http,
        keys,
        settings,
    ):
        alice, bob = keys["alice"], keys["bob"]
        for name in ("one", "two"):
            assert (await _upload(http, alice, name)).status_code == 201
        refused = await _upload(http, alice, "three")
        message = _detail(refused, 429)
        assert "you store 2 datasets" in message and "make 3" in message
        assert "quota of 2" in message
        assert refused.json()["error"]["type"] == "too_many_datasets"
        assert "Retry-After" not in refused.headers  # waiting does not help; deleting does
        assert _rows(settings) == 2
        assert (await _upload(http, bob, "three")).status_code == 201
        assert (await http.delete("/v1/datasets/one", headers=alice)).status_code == 204
        assert (await _upload(http, alice, "three")).status_code == 201


async def test_concurrent_uploads_cannot_both_take_the_last_place(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    """The check that counts runs in the inserting transaction: whatever the interleaving,
    one of six simultaneous uploads gets the one free place."""
    async with _service(tmp_path, migrated_sqlite, dataset_quota_count=1) as (
        http,
        keys,
        settings,
    ):
        responses = await asyncio.gather(*(_upload(http, keys["alice"], f"d{i}") for i in range(6)))
        assert sorted(r.status_code for r in responses) == [201] + [429] * 5
        assert _rows(settings) == 1


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.max_dataset_bytes == 256 * MiB
    assert defaults.dataset_quota_bytes == 1024 * MiB
    assert defaults.dataset_quota_count == 100
    monkeypatch.setenv("NNS_DATASET_QUOTA_COUNT", "0")  # 0: no quota
    monkeypatch.setenv("NNS_MAX_DATASET_BYTES", "1000")
    configured = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (configured.dataset_quota_count, configured.max_dataset_bytes) == (0, 1000)


async def test_idx_headers_declaring_too_much_are_413(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    """A 16-byte IDX header may declare 4 GB; judged before read_idx allocates anything."""
    images = b"\0\0\x08\x03" + (1_000_000).to_bytes(4, "big") + (64).to_bytes(4, "big") * 2
    labels = b"\0\0\x08\x01" + (1_000_000).to_bytes(4, "big")
    async with _service(tmp_path, migrated_sqlite, max_dataset_bytes=MiB) as (http, keys, _):
        response = await _upload(
            http, keys["alice"], "idx", images, labels=("l.idx", labels), filename="i.idx"
        )
        message = _detail(response, 413)
        assert "4,097,000,000 bytes" in message and "1,048,576-byte limit" in message
