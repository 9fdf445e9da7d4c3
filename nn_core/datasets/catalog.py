"""Built-in datasets: the Playground toys (classification and regression), MNIST,
Fashion-MNIST and the SMS Spam Collection.

Each entry knows its files (published sha256, mirrors tried in order) and how to turn them
into a train/test split. Files live in ``<cache_dir>/<dataset name>/``; the service passes its
data-directory setting as `cache_dir`. Nothing is downloaded until `load_dataset` is called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nn_core.datasets.download import (
    DataFile,
    DatasetUnavailable,
    RemoteFile,
    ZipMember,
    is_present,
    locate,
)
from nn_core.datasets.idx import read_idx
from nn_core.datasets.loaders import load_text_labels
from nn_core.datasets.synthetic import SYNTHETIC, SYNTHETIC_REGRESSION
from nn_core.errors import DataError, SpecError

__all__ = [
    "CATALOG",
    "DatasetInfo",
    "DatasetUnavailable",
    "Entry",
    "LoadedDataset",
    "idx_dataset",
    "list_datasets",
    "load_dataset",
    "register",
]

PathLike = str | os.PathLike[str]
#: Longest one-line summary of why a dataset cannot be had (shown as a job's failure reason).
MAX_SUMMARY = 300


@dataclass(frozen=True)
class DatasetInfo:
    """What a client needs to pick a dataset and size a model for it."""

    name: str
    #: "classification": numeric X, class labels; "regression": numeric X, real-valued y of
    #: shape (n, outputs); "text": X holds raw strings (use the text_features transform).
    kind: str
    description: str
    #: Width of X (None for text, whose width depends on the featurizer).
    n_features: int | None
    classes: tuple[int | str, ...]
    class_names: tuple[str, ...]
    n_train: int
    n_test: int
    #: "synthetic" (generated), "download" (fetched into the cache) or "local" (bundled files).
    source: str
    #: Loadable now without a network: generated, or its files are on disk (checksummed on load).
    available: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "n_features": self.n_features,
            "classes": list(self.classes),
            "class_names": list(self.class_names),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "source": self.source,
            "available": self.available,
        }


@dataclass
class LoadedDataset:
    """A dataset split into train and test, with JSON-safe metadata (source files, seed...)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    info: DatasetInfo
    metadata: dict[str, Any] = field(default_factory=dict)


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Options:
    seed: int
    test_fraction: float
    n_samples: int | None
    noise: float | None


@dataclass(frozen=True)
class Entry:
    """A catalog entry: metadata plus the files and the function that splits them."""

    name: str
    kind: str
    description: str
    n_features: int | None
    classes: tuple[int | str, ...]
    class_names: tuple[str, ...]
    n_train: int
    n_test: int
    source: str
    build: Callable[[Entry, dict[str, Path], Options], tuple[Arrays, dict[str, Any]]]
    files: tuple[DataFile, ...] = ()
    #: Appended to the offline summary (with its own leading separator): where the files
    #: come from, another way to get them, or a dataset that stands in offline.
    offline_hint: str = ""

    def info(self, cache_dir: PathLike | None = None) -> DatasetInfo:
        directory = _directory(cache_dir, self.name)
        available = all(is_present(f, directory) for f in self.files)
        return DatasetInfo(
            name=self.name,
            kind=self.kind,
            description=self.description,
            n_features=self.n_features,
            classes=self.classes,
            class_names=self.class_names,
            n_train=self.n_train,
            n_test=self.n_test,
            source=self.source,
            available=available,
        )


CATALOG: dict[str, Entry] = {}


def register(entry: Entry) -> Entry:
    CATALOG[entry.name] = entry
    return entry


def list_datasets(cache_dir: PathLike | None = None) -> list[DatasetInfo]:
    """Every built-in dataset, with `available` computed against `cache_dir`."""
    return [entry.info(cache_dir) for entry in CATALOG.values()]


def load_dataset(
    name: str,
    cache_dir: PathLike | None = None,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    n_samples: int | None = None,
    noise: float | None = None,
    download: bool = True,
    timeout: float = 30.0,
) -> LoadedDataset:
    """Load (downloading into ``cache_dir/<name>/`` if needed) and split a built-in dataset.

    `seed` drives generation and any split the dataset does not ship with; `test_fraction`
    applies to those splits. `n_samples`/`noise` are for the synthetic sets only. Raises
    DatasetUnavailable, naming each missing file's path and sha256, when files cannot be had.
    """
    entry = CATALOG.get(name)
    if entry is None:
        raise SpecError("dataset", f"unknown dataset {name!r}", CATALOG)
    if isinstance(test_fraction, bool) or not 0.0 < test_fraction < 1.0:
        raise SpecError(
            "test_fraction", f"must be between 0 and 1 (exclusive), got {test_fraction!r}"
        )
    if entry.source != "synthetic" and (n_samples is not None or noise is not None):
        raise SpecError(
            "n_samples", f"n_samples and noise only apply to synthetic datasets, not {name!r}"
        )
    directory = _directory(cache_dir, name)
    located = _locate_all(entry, directory, download, timeout)
    paths = {name: path for name, (path, _) in located.items()}
    options = Options(seed=seed, test_fraction=test_fraction, n_samples=n_samples, noise=noise)
    (x_train, y_train, x_test, y_test), meta = entry.build(entry, paths, options)
    info = replace(entry.info(cache_dir), n_train=len(x_train), n_test=len(x_test), available=True)
    meta = {"class_names": list(entry.class_names), **meta}
    if located:
        meta["files"] = {n: {"path": str(p), "sha256": d} for n, (p, d) in located.items()}
    return LoadedDataset(name, x_train, y_train, x_test, y_test, info, meta)


def _directory(cache_dir: PathLike | None, name: str) -> Path | None:
    return Path(cache_dir) / name if cache_dir is not None else None


def _locate_all(
    entry: Entry, directory: Path | None, download: bool, timeout: float
) -> dict[str, tuple[Path, str]]:
    """(path, sha256) of every file of the entry; on failure, one error listing all files
    still missing."""
    found: dict[str, tuple[Path, str]] = {}
    for i, file in enumerate(entry.files):
        try:
            found[file.name] = locate(file, directory, download=download, timeout=timeout)
        except DatasetUnavailable as exc:
            rest = [f for f in entry.files[i + 1 :] if not is_present(f, directory)]
            missing = exc.missing + [(_where(f, directory), f.sha256) for f in rest]
            message = f"dataset {entry.name!r} is unavailable: {exc.message}"
            if rest:
                message += " Also needed: " + "; ".join(f.hint(directory) for f in rest) + "."
            summary = offline_summary(entry, [file, *rest], directory, exc.cause)
            raise DatasetUnavailable(message, missing, cause=exc.cause, summary=summary) from None
    return found


def offline_summary(
    entry: Entry, missing: Sequence[DataFile], directory: Path | None, cause: str
) -> str:
    """One line of at most MAX_SUMMARY characters: what is missing, why, and the fix.

    The full story (every mirror's error, each file's sha256) stays in the exception's
    message; this line is what a user reads in a failed job.
    """
    head = f"{entry.name} is not on this machine and cannot be downloaded ({cause}): "
    if directory is None:
        return (head + "set a cache directory")[:MAX_SUMMARY]
    first = missing[0].name
    named = first if len(missing) == 1 else f"its {len(missing)} files ({first} ...)"
    bare = first if len(missing) == 1 else f"its {len(missing)} files"
    # Longest first: drop the example file name, then the hint, before cutting anything.
    for what, hint in ((named, entry.offline_hint), (bare, entry.offline_hint), (bare, "")):
        line = f"{head}put {what} in {directory}{hint}"
        if len(line) <= MAX_SUMMARY:
            return line
    return line[: MAX_SUMMARY - 3] + "..."


def _where(file: DataFile, directory: Path | None) -> Path:
    return directory / file.name if directory is not None else Path(file.name)


# ----------------------------------------------------------------------------- synthetic

SYNTHETIC_SIZE = 1000
SYNTHETIC_DESCRIPTIONS = {
    "xor": "XOR quadrants (TensorFlow Playground): class 1 where x*y >= 0",
    "circle": "A disc inside a ring (TensorFlow Playground)",
    "gauss": "Two Gaussian blobs (TensorFlow Playground)",
    "spiral": "Two interleaved spiral arms (TensorFlow Playground)",
}
SYNTHETIC_REGRESSION_DESCRIPTIONS = {
    "plane": "Regression on a tilted plane, y = (x1 + x2) / 10 in [-1, 1] (TensorFlow Playground)",
    "multi-gaussian": "Regression on six Gaussian hills and valleys, y in [-1, 1] "
    "(TensorFlow Playground)",
}


def _build_synthetic(
    entry: Entry, paths: dict[str, Path], opt: Options
) -> tuple[Arrays, dict[str, Any]]:
    n = opt.n_samples if opt.n_samples is not None else SYNTHETIC_SIZE
    noise = opt.noise if opt.noise is not None else 0.0
    maker = (
        SYNTHETIC_REGRESSION[entry.name] if entry.kind == "regression" else SYNTHETIC[entry.name]
    )
    x, y = maker(n, noise, opt.seed)  # already shuffled
    n_test = round(n * opt.test_fraction)
    if n_test == 0 or n_test == n:
        raise SpecError(
            "n_samples", f"{n} samples leave an empty split at test_fraction {opt.test_fraction}"
        )
    cut = n - n_test
    meta = {"generator": {"n_samples": n, "noise": noise, "seed": opt.seed}, "split": "random"}
    return (x[:cut], y[:cut], x[cut:], y[cut:]), meta


def _register_synthetic() -> None:
    n_test = round(SYNTHETIC_SIZE * 0.2)
    for name, description in SYNTHETIC_DESCRIPTIONS.items():
        register(
            Entry(
                name=name,
                kind="classification",
                description=description,
                n_features=2,
                classes=(0, 1),
                class_names=("0", "1"),
                n_train=SYNTHETIC_SIZE - n_test,
                n_test=n_test,
                source="synthetic",
                build=_build_synthetic,
            )
        )
    for name, description in SYNTHETIC_REGRESSION_DESCRIPTIONS.items():
        register(
            Entry(
                name=name,
                kind="regression",
                description=description,
                n_features=2,
                classes=(),
                class_names=(),
                n_train=SYNTHETIC_SIZE - n_test,
                n_test=n_test,
                source="synthetic",
                build=_build_synthetic,
            )
        )


_register_synthetic()


# ----------------------------------------------------------------------------- IDX image sets

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def idx_dataset(
    name: str,
    description: str,
    mirrors: Sequence[str],
    sha256: Mapping[str, str],
    class_names: Sequence[str],
    *,
    sizes: Mapping[str, int] | None = None,
    also_accept: Mapping[str, Sequence[str]] | None = None,
    search_dirs: Sequence[str] = (),
    n_train: int = 60000,
    n_test: int = 10000,
    offline_hint: str = "",
) -> Entry:
    """An entry for an MNIST-layout dataset (the four IDX_FILES, 28x28 uint8 images).

    Each mirror is a base URL ending in "/"; `sha256` maps each of IDX_FILES to its digest.
    """
    files = tuple(
        RemoteFile(
            name=f,
            sha256=sha256[f],
            urls=tuple(m + f for m in mirrors),
            size=(sizes or {}).get(f),
            also_accept=tuple((also_accept or {}).get(f, ())),
            search_dirs=tuple(search_dirs),
        )
        for f in IDX_FILES
    )
    return Entry(
        name=name,
        kind="classification",
        description=description,
        n_features=28 * 28,
        classes=tuple(range(len(class_names))),
        class_names=tuple(class_names),
        n_train=n_train,
        n_test=n_test,
        source="local" if search_dirs and not mirrors else "download",
        build=_build_idx,
        files=files,
        offline_hint=offline_hint,
    )


def _build_idx(entry: Entry, paths: dict[str, Path], opt: Options) -> tuple[Arrays, dict[str, Any]]:
    train = _idx_pair(paths, IDX_FILES[0], IDX_FILES[1], len(entry.classes))
    test = _idx_pair(paths, IDX_FILES[2], IDX_FILES[3], len(entry.classes))
    return (*train, *test), {"split": "official", "image_shape": [28, 28]}


def _idx_pair(
    paths: dict[str, Path], images_name: str, labels_name: str, k: int
) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(paths[images_name], field=images_name)
    labels = read_idx(paths[labels_name], field=labels_name)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            images_name, f"expected uint8 images of 28x28, got {images.dtype}{list(images.shape)}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(labels_name, f"has {len(labels)} labels for {len(images)} images")
    if len(labels) and int(labels.max()) >= k:
        raise DataError(labels_name, f"label {int(labels.max())} is outside 0..{k - 1}")
    return images.reshape(len(images), 28 * 28), labels.astype(np.int64)


def _by_file(values: Sequence[Any]) -> dict[str, Any]:
    """Values listed in IDX_FILES order -> {file name: value}."""
    return dict(zip(IDX_FILES, values, strict=True))


MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_SHA256 = _by_file(
    [
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ]
)
register(
    idx_dataset(
        "mnist",
        "Handwritten digits 0-9, 28x28 grey images (LeCun, Cortes, Burges)",
        MNIST_MIRRORS,
        MNIST_SHA256,
        [str(d) for d in range(10)],
        sizes=_by_file([9912422, 28881, 1648877, 4542]),
        offline_hint=", or train on fashion-mnist instead (apt-get install dataset-fashion-mnist)",
    )
)

#: Where the Debian package dataset-fashion-mnist installs the files.
FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
FASHION_SHA256 = _by_file(
    [
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ]
)
# Debian's dataset-fashion-mnist (0.0~git20200523.55506a9-1) re-gzips the same IDX data without
# the original file-name field in the gzip header, so its files have different digests.
FASHION_DEBIAN_SHA256 = _by_file(
    [
        ["b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"],
        ["0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"],
        ["cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"],
        ["8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"],
    ]
)
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
register(
    idx_dataset(
        "fashion-mnist",
        "Zalando article images in 10 classes, 28x28 grey images (Xiao, Rasul, Vollgraf)",
        FASHION_MIRRORS,
        FASHION_SHA256,
        FASHION_CLASSES,
        sizes=_by_file([26421880, 29515, 4422102, 5148]),
        also_accept=FASHION_DEBIAN_SHA256,
        search_dirs=[FASHION_SYSTEM_DIR],
        offline_hint=", or apt-get install dataset-fashion-mnist",
    )
)


# ----------------------------------------------------------------------------- SMS spam

SMS_FILE = ZipMember(
    name="SMSSpamCollection",
    sha256="7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
    archive=RemoteFile(
        name="sms+spam+collection.zip",
        sha256="1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3",
        urls=("https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",),
        size=203415,
    ),
    member="SMSSpamCollection",
    # The same messages with a "Label<TAB>SMS" header line added (a known redistributed copy).
    also_accept=("fae7ea7d915ef73903e5c2f46ffa2f4a39909a574e20fda4f2b81f7cb1e15e1f",),
)
SMS_LABELS = ("ham", "spam")


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices (each in file order) with every class split by the fraction."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        n_test = round(len(rows) * test_fraction)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _build_sms(entry: Entry, paths: dict[str, Path], opt: Options) -> tuple[Arrays, dict[str, Any]]:
    texts, labels = load_text_labels(paths[SMS_FILE.name])
    unknown = sorted(set(labels.tolist()) - set(SMS_LABELS))
    if unknown:
        raise DataError(SMS_FILE.name, f"unexpected labels {unknown[:5]}; expected ham or spam")
    train, test = stratified_split(labels, opt.test_fraction, opt.seed)
    split = {"stratified": True, "test_fraction": opt.test_fraction, "seed": opt.seed}
    return (texts[train], labels[train], texts[test], labels[test]), {"split": split}


register(
    Entry(
        name="sms-spam",
        kind="text",
        description="SMS Spam Collection: 5,574 English SMS, ham or spam (Almeida, Gómez Hidalgo)",
        n_features=None,
        classes=SMS_LABELS,
        class_names=SMS_LABELS,
        n_train=3862 + 598,
        n_test=965 + 149,
        source="download",
        build=_build_sms,
        files=(SMS_FILE,),
        offline_hint=" (it is in the zip at https://archive.ics.uci.edu/dataset/228)",
    )
)
