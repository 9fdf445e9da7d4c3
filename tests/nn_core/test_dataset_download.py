"""Fetching dataset files from a real local HTTP server: checksums, mirrors, atomic placement,
local drop-ins, and a clear error naming path and sha256 when offline."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from dataset_server import FileServer, closed_port_url, serve_files

from nn_core.datasets.download import DatasetUnavailable, RemoteFile, ZipMember, ensure

GOOD = b"the real dataset bytes\n" * 100
SHA = hashlib.sha256(GOOD).hexdigest()


@pytest.fixture
def server() -> Iterator[FileServer]:
    with serve_files() as srv:
        yield srv


def _file(*urls: str, **kwargs: object) -> RemoteFile:
    return RemoteFile(name="blob.bin", sha256=SHA, urls=tuple(urls), **kwargs)  # type: ignore[arg-type]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "blob.bin")


def test_download_verifies_and_places_the_file(server: FileServer, tmp_path: Path) -> None:
    server.files["/a/blob.bin"] = GOOD
    path = ensure(_file(f"{server.url}/a/blob.bin"), tmp_path / "cache")
    assert path == tmp_path / "cache" / "blob.bin"
    assert path.read_bytes() == GOOD
    assert _leftovers(path.parent) == []
    # Second call: the verified copy is used, the network is not.
    assert ensure(_file(closed_port_url() + "/x"), tmp_path / "cache") == path
    assert server.requests == ["/a/blob.bin"]


def test_corrupt_first_mirror_then_good_second(server: FileServer, tmp_path: Path) -> None:
    server.files["/m1/blob.bin"] = GOOD[:-1] + b"X"
    server.files["/m2/blob.bin"] = GOOD
    path = ensure(_file(f"{server.url}/m1/blob.bin", f"{server.url}/m2/blob.bin"), tmp_path)
    assert path.read_bytes() == GOOD
    assert server.requests == ["/m1/blob.bin", "/m2/blob.bin"]
    assert _leftovers(tmp_path) == []  # the corrupt temp file was deleted


def test_missing_on_first_mirror_then_good_second(server: FileServer, tmp_path: Path) -> None:
    server.files["/m2/blob.bin"] = GOOD
    assert ensure(
        _file(f"{server.url}/m1/blob.bin", f"{server.url}/m2/blob.bin"), tmp_path
    ).is_file()


def test_all_mirrors_bad_raises_with_reasons(server: FileServer, tmp_path: Path) -> None:
    server.files["/m1/blob.bin"] = b"truncated"
    with pytest.raises(DatasetUnavailable) as info:
        ensure(_file(f"{server.url}/m1/blob.bin", f"{server.url}/m2/blob.bin"), tmp_path)
    message = info.value.message
    assert "corrupt download: sha256 " + hashlib.sha256(b"truncated").hexdigest() in message
    assert "HTTP 404" in message
    assert (
        f"put blob.bin (from {server.url}/m1/blob.bin) at {tmp_path / 'blob.bin'} (sha256 {SHA})"
        in message
    )
    assert info.value.missing == [(tmp_path / "blob.bin", SHA)]
    assert info.value.cause == "HTTP 404 Not Found"  # the last mirror's reason, in short
    assert list(tmp_path.iterdir()) == []


def test_offline_names_the_path_and_sha256(tmp_path: Path) -> None:
    cache = tmp_path / "data" / "mnist"
    with pytest.raises(DatasetUnavailable) as info:
        ensure(_file(closed_port_url() + "/blob.bin"), cache, timeout=5)
    message = str(info.value)
    assert "cannot connect" in message
    assert str(cache / "blob.bin") in message
    assert SHA in message
    assert info.value.cause == "no connection"  # every mirror refused: the offline case


def test_download_larger_than_published_size_is_cut_off(server: FileServer, tmp_path: Path) -> None:
    server.files["/big"] = GOOD + b"more"
    with pytest.raises(DatasetUnavailable, match="larger than the expected"):
        ensure(_file(f"{server.url}/big", size=len(GOOD)), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_scheme_is_not_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(GOOD)
    with pytest.raises(DatasetUnavailable, match="unsupported URL scheme 'file'"):
        ensure(_file(secret.as_uri()), tmp_path / "cache")


def test_dropped_in_file_is_used_offline(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(GOOD)
    assert (
        ensure(_file(closed_port_url() + "/blob.bin"), tmp_path, download=False)
        == tmp_path / "blob.bin"
    )


def test_wrong_cached_file_is_reported_and_replaced_by_a_good_download(
    server: FileServer, tmp_path: Path
) -> None:
    (tmp_path / "blob.bin").write_bytes(b"stale")
    with pytest.raises(DatasetUnavailable, match="exists but its sha256 is"):
        ensure(_file(f"{server.url}/nothing"), tmp_path)
    assert (tmp_path / "blob.bin").read_bytes() == b"stale"  # never deleted on failure
    server.files["/ok"] = GOOD
    assert ensure(_file(f"{server.url}/ok"), tmp_path).read_bytes() == GOOD


def test_search_dirs_are_checked_and_accept_alternative_digests(tmp_path: Path) -> None:
    system = tmp_path / "usr-share"
    system.mkdir()
    repacked = b"same content, different packaging"
    (system / "blob.bin").write_bytes(repacked)
    file = _file(also_accept=(hashlib.sha256(repacked).hexdigest(),), search_dirs=(str(system),))
    assert ensure(file, None) == system / "blob.bin"
    assert ensure(file, tmp_path / "cache", download=False) == system / "blob.bin"


def test_no_cache_directory_and_downloads_disabled(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable, match="no cache directory is configured"):
        ensure(_file(closed_port_url()), None)
    with pytest.raises(DatasetUnavailable, match="downloads are disabled"):
        ensure(_file(closed_port_url()), tmp_path, download=False)


# ----------------------------------------------------------------------------- zip members

MEMBER = b"ham\thello\nspam\tWIN\n"


def _zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _member(archive_bytes: bytes, *urls: str) -> ZipMember:
    archive = RemoteFile("pack.zip", hashlib.sha256(archive_bytes).hexdigest(), tuple(urls))
    return ZipMember("Data", hashlib.sha256(MEMBER).hexdigest(), archive, member="Data")


def test_zip_member_downloaded_and_extracted(server: FileServer, tmp_path: Path) -> None:
    packed = _zip(Data=MEMBER, readme=b"x")
    server.files["/pack.zip"] = packed
    path = ensure(_member(packed, f"{server.url}/pack.zip"), tmp_path)
    assert path == tmp_path / "Data"
    assert path.read_bytes() == MEMBER
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Data", "pack.zip"]


def test_zip_member_offline_hint_offers_both_files(tmp_path: Path) -> None:
    url = closed_port_url() + "/pack.zip"
    file = _member(_zip(Data=MEMBER), url)
    with pytest.raises(DatasetUnavailable) as info:
        ensure(file, tmp_path, timeout=5)
    message = info.value.message
    assert f"put Data at {tmp_path / 'Data'} (sha256 {file.sha256})" in message
    assert f"or put pack.zip (from {url}) at {tmp_path / 'pack.zip'}" in message


def test_zip_with_wrong_member_content_is_refused(tmp_path: Path) -> None:
    packed = _zip(Data=b"tampered")
    (tmp_path / "pack.zip").write_bytes(packed)
    with pytest.raises(DatasetUnavailable, match=r"Data in .* has sha256"):
        ensure(_member(packed), tmp_path)
    assert not (tmp_path / "Data").exists()


def test_zip_without_the_member_is_refused(tmp_path: Path) -> None:
    packed = _zip(Other=MEMBER)
    (tmp_path / "pack.zip").write_bytes(packed)
    with pytest.raises(DatasetUnavailable, match="cannot read Data"):
        ensure(_member(packed), tmp_path)
