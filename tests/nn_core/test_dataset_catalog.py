"""The dataset catalog: listing, synthetic splits, a full download-and-load of a test IDX
dataset from a local HTTP server, the SMS and Fashion-MNIST entries, and offline errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from dataset_server import FileServer, closed_port_url, serve_files
from shared_data import FASHION_MISSING, SMS_SPAM, SMS_SPAM_MISSING

from nn_core.datasets.catalog import (
    CATALOG,
    FASHION_SYSTEM_DIR,
    IDX_FILES,
    DatasetUnavailable,
    idx_dataset,
    list_datasets,
    load_dataset,
    stratified_split,
)
from nn_core.datasets.idx import encode_idx
from nn_core.errors import DataError, SpecError

SMS_COPY = SMS_SPAM
BUILT_IN = {
    "xor",
    "circle",
    "gauss",
    "spiral",
    "plane",
    "multi-gaussian",
    "mnist",
    "fashion-mnist",
    "sms-spam",
}


def test_list_datasets_is_json_safe_and_complete(tmp_path: Path) -> None:
    infos = {i.name: i for i in list_datasets(tmp_path)}
    assert set(infos) >= BUILT_IN
    json.dumps([i.to_dict() for i in infos.values()])
    assert infos["spiral"].available and infos["spiral"].n_features == 2
    assert not infos["mnist"].available  # nothing in an empty cache
    assert infos["mnist"].classes == tuple(range(10))
    assert infos["fashion-mnist"].class_names[9] == "Ankle boot"
    assert infos["sms-spam"].kind == "text"
    assert infos["sms-spam"].classes == ("ham", "spam")
    assert (infos["sms-spam"].n_train, infos["sms-spam"].n_test) == (4460, 1114)
    assert infos["fashion-mnist"].available == Path(FASHION_SYSTEM_DIR).is_dir()


def test_published_digests_look_like_sha256() -> None:
    for entry in CATALOG.values():
        for file in entry.files:
            assert len(file.sha256) == 64 and int(file.sha256, 16) >= 0, (entry.name, file.name)


@pytest.mark.parametrize("name", ["xor", "circle", "gauss", "spiral"])
def test_synthetic_split_is_seeded(name: str) -> None:
    a = load_dataset(name, seed=3)
    assert a.X_train.shape == (800, 2) and a.X_test.shape == (200, 2)
    assert a.X_train.dtype == np.float32 and a.y_train.dtype == np.int64
    b = load_dataset(name, seed=3)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    c = load_dataset(name, seed=4, n_samples=50, noise=0.3, test_fraction=0.5)
    assert len(c.X_train) == len(c.X_test) == 25
    assert c.metadata["generator"] == {"n_samples": 50, "noise": 0.3, "seed": 4}
    json.dumps(c.metadata)


@pytest.mark.parametrize("name", ["plane", "multi-gaussian"])
def test_synthetic_regression_sets_are_listed_and_split_as_real_values(
    name: str, tmp_path: Path
) -> None:
    info = {i.name: i for i in list_datasets(tmp_path)}[name]
    assert (info.kind, info.n_features, info.classes, info.available) == ("regression", 2, (), True)
    a = load_dataset(name, seed=3, noise=0.1)
    assert a.X_train.shape == (800, 2) and a.y_train.shape == (800, 1)
    assert a.y_test.shape == (200, 1) and a.y_test.dtype == np.float32
    assert np.abs(a.y_train).max() <= 1.0
    np.testing.assert_array_equal(load_dataset(name, seed=3, noise=0.1).y_test, a.y_test)
    assert a.metadata["class_names"] == []


def test_bad_requests_are_spec_errors() -> None:
    with pytest.raises(SpecError) as info:
        load_dataset("cifar")
    assert info.value.allowed is not None and "mnist" in info.value.allowed
    with pytest.raises(SpecError, match="test_fraction"):
        load_dataset("xor", test_fraction=1.0)
    with pytest.raises(SpecError, match="only apply to synthetic"):
        load_dataset("mnist", n_samples=10)
    with pytest.raises(SpecError, match="empty split"):
        load_dataset("xor", n_samples=2, test_fraction=0.1)


# ----------------------------------------------------------------------------- a test IDX dataset


def _tiny_idx_files(seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    n = {"train": 12, "t10k": 5}
    out = {}
    for split, count in n.items():
        out[f"{split}-images-idx3-ubyte.gz"] = encode_idx(
            rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), compress=True
        )
        out[f"{split}-labels-idx1-ubyte.gz"] = encode_idx(
            rng.integers(0, 3, count).astype(np.uint8), compress=True
        )
    return out


@pytest.fixture
def server() -> Iterator[FileServer]:
    with serve_files() as srv:
        yield srv


@pytest.fixture
def tiny(server: FileServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """A registered 3-class IDX dataset whose first mirror serves corrupt files."""
    files = _tiny_idx_files()
    for name, data in files.items():
        server.files[f"/bad/{name}"] = data[:-4] + b"oops"
        server.files[f"/good/{name}"] = data
    entry = idx_dataset(
        "tiny-digits",
        "test fixture",
        [f"{server.url}/bad/", f"{server.url}/good/"],
        {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        ["a", "b", "c"],
        n_train=12,
        n_test=5,
    )
    monkeypatch.setitem(CATALOG, entry.name, entry)
    return files


def test_download_and_load_an_idx_dataset(
    tiny: dict[str, bytes], server: FileServer, tmp_path: Path
) -> None:
    assert not {i.name: i for i in list_datasets(tmp_path)}["tiny-digits"].available
    data = load_dataset("tiny-digits", tmp_path)
    assert data.X_train.shape == (12, 784) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (5, 784)
    assert data.y_train.dtype == np.int64 and set(data.y_train.tolist()) <= {0, 1, 2}
    assert data.info.available and data.info.n_train == 12
    assert data.metadata["split"] == "official"
    assert data.metadata["class_names"] == ["a", "b", "c"]
    files = data.metadata["files"]
    assert files["t10k-labels-idx1-ubyte.gz"]["path"] == str(
        tmp_path / "tiny-digits" / "t10k-labels-idx1-ubyte.gz"
    )
    json.dumps(data.metadata)
    # Every file was tried on the corrupt mirror first, then fetched from the good one.
    assert [r.split("/")[1] for r in server.requests] == ["bad", "good"] * 4
    assert sorted(p.name for p in (tmp_path / "tiny-digits").iterdir()) == sorted(IDX_FILES)
    assert {i.name: i for i in list_datasets(tmp_path)}["tiny-digits"].available
    # Cached now: loads again with downloads disabled.
    again = load_dataset("tiny-digits", tmp_path, download=False)
    np.testing.assert_array_equal(again.X_train, data.X_train)


def test_offline_error_lists_every_missing_file(tiny: dict[str, bytes], tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("tiny-digits", tmp_path, download=False)
    err = info.value
    assert [p for p, _ in err.missing] == [tmp_path / "tiny-digits" / f for f in IDX_FILES]
    for name, data in tiny.items():
        assert (
            f"at {tmp_path / 'tiny-digits' / name} (sha256 {hashlib.sha256(data).hexdigest()})"
            in err.message
        )
    assert err.message.startswith("dataset 'tiny-digits' is unavailable")


def test_real_mnist_entry_offline_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", tmp_path, download=False)
    target = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    assert (
        target,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ) in info.value.missing
    assert str(target) in info.value.message
    assert (
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
        in info.value.message
    )
    assert len(info.value.missing) == 4


def test_mnist_mirrors_are_tried_in_order() -> None:
    urls = CATALOG["mnist"].files[0].urls  # type: ignore[union-attr]
    assert urls == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
        "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz",
    )


def test_idx_dataset_with_inconsistent_files_is_a_data_error(
    tiny: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = dict(tiny)
    bad["train-labels-idx1-ubyte.gz"] = encode_idx(np.zeros(3, dtype=np.uint8), compress=True)
    directory = tmp_path / "broken"
    directory.mkdir()
    for name, data in bad.items():
        (directory / name).write_bytes(data)
    entry = idx_dataset(
        "broken",
        "",
        [closed_port_url() + "/"],
        {n: hashlib.sha256(d).hexdigest() for n, d in bad.items()},
        ["a", "b", "c"],
    )
    monkeypatch.setitem(CATALOG, "broken", entry)
    with pytest.raises(DataError, match="has 3 labels for 12 images"):
        load_dataset("broken", tmp_path, download=False)


# ----------------------------------------------------------------------------- SMS spam


@pytest.fixture
def sms_cache(tmp_path: Path) -> Path:
    if not SMS_COPY.is_file():
        pytest.skip(SMS_SPAM_MISSING)
    (tmp_path / "sms-spam").mkdir()
    shutil.copy(SMS_COPY, tmp_path / "sms-spam" / "SMSSpamCollection")
    return tmp_path


def test_sms_spam_stratified_split(sms_cache: Path) -> None:
    data = load_dataset("sms-spam", sms_cache, download=False)
    assert data.X_train.dtype.kind == "U" and data.y_train.dtype.kind == "U"
    assert (len(data.X_train), len(data.X_test)) == (4460, 1114)
    assert (data.y_test == "spam").sum() == 149 and (data.y_train == "spam").sum() == 598
    assert data.info.kind == "text"
    assert data.metadata["split"] == {"stratified": True, "test_fraction": 0.2, "seed": 0}
    same = load_dataset("sms-spam", sms_cache, download=False)
    np.testing.assert_array_equal(same.X_test, data.X_test)
    other = load_dataset("sms-spam", sms_cache, download=False, seed=1)
    assert not np.array_equal(other.X_test, data.X_test)


def test_sms_spam_original_file_without_header_line(sms_cache: Path) -> None:
    path = sms_cache / "sms-spam" / "SMSSpamCollection"
    original = path.read_bytes().split(b"\n", 1)[1]  # drop the copy's "Label<TAB>SMS" line
    assert hashlib.sha256(original).hexdigest() == CATALOG["sms-spam"].files[0].sha256
    path.write_bytes(original)
    data = load_dataset("sms-spam", sms_cache, download=False)
    assert len(data.X_train) + len(data.X_test) == 5574


def test_sms_spam_offline_message_offers_file_or_zip(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("sms-spam", tmp_path, download=False)
    message = info.value.message
    assert f"put SMSSpamCollection at {tmp_path / 'sms-spam' / 'SMSSpamCollection'}" in message
    assert "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d" in message
    assert str(tmp_path / "sms-spam" / "sms+spam+collection.zip") in message
    assert "1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3" in message


def test_stratified_split_keeps_class_ratios() -> None:
    labels = np.array(["a"] * 90 + ["b"] * 10)
    train, test = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    assert (labels[test] == "b").sum() == 2 and len(test) == 20
    assert (np.diff(train) > 0).all()


# ----------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.skipif(
    not Path(FASHION_SYSTEM_DIR).is_dir(),
    reason=FASHION_MISSING,
)
def test_fashion_mnist_from_the_system_package(tmp_path: Path) -> None:
    data = load_dataset("fashion-mnist", tmp_path, download=False)
    assert data.X_train.shape == (60000, 784) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (10000, 784)
    assert data.y_train.dtype == np.int64
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert data.metadata["files"]["train-images-idx3-ubyte.gz"]["path"].startswith(
        FASHION_SYSTEM_DIR
    )
    assert not (tmp_path / "fashion-mnist").exists()  # nothing copied or downloaded
