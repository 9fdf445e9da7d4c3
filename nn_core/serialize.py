"""Models and full training states to bytes and back, without pickle.

The format is an ``.npz`` archive (read with ``allow_pickle=False``): numeric or fixed-width
unicode arrays plus one ``__meta__`` array holding UTF-8 JSON (spec, format version, trainer
counters, RNG state). Loading rebuilds the model from the stored spec and checks every array's
name, shape and dtype against it, so a tampered or truncated file is refused with a clear error
instead of producing a silently wrong model.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from nn_core.errors import SpecError
from nn_core.model import Model
from nn_core.preprocessing import LabelEncoder
from nn_core.spec import build_model, model_to_spec
from nn_core.training import EarlyStopping, Trainer

FORMAT = "nn-core"
VERSION = 1
META = "__meta__"


def _pack(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    payload = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buffer, **{META: payload, **arrays})  # type: ignore[arg-type]
    return buffer.getvalue()


#: Our files are written uncompressed, so they decode to about their own size; a member
#: that inflates far beyond the file (a zip bomb) is refused before anything is allocated.
MAX_INFLATION = 8
INFLATION_SLACK = 1 << 20


def _check_members(data: bytes) -> None:
    """Refuse, from the zip directory and .npy headers alone, what would blow up memory."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > MAX_INFLATION * len(data) + INFLATION_SLACK:
                raise SpecError(
                    "file",
                    f"its arrays would decode to {total:,} bytes from a {len(data):,}-byte file",
                )
            for member in members:
                if not member.filename.endswith(".npy"):
                    raise SpecError("file", f"unexpected member {member.filename[:100]!r}")
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                name = member.filename[:-4][:100]
                if dtype.hasobject:
                    raise SpecError(
                        "file", f"not a readable {FORMAT} file (array {name!r} holds objects)"
                    )
                if float(np.prod(shape, dtype=np.float64)) * dtype.itemsize > member.file_size:
                    raise SpecError("file", f"array {name!r} declares more data than it holds")
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError("file", f"not a readable {FORMAT} file ({exc})") from None


def _unpack(data: bytes, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    _check_members(data)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop(META).tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise SpecError("file", f"not a readable {FORMAT} file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SpecError("file", f"not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise SpecError("file", f"format version {meta.get('version')!r} is not supported")
    if meta.get("kind") != kind:
        raise SpecError("file", f"holds a {meta.get('kind')!r}, expected a {kind!r}")
    return meta, arrays


def _take(arrays: dict[str, np.ndarray], name: str, like: np.ndarray) -> np.ndarray:
    """The stored array `name`, checked against the shape and dtype it must have."""
    if name not in arrays:
        raise SpecError("file", f"array {name!r} is missing")
    value = arrays[name]
    if value.shape != like.shape or value.dtype != like.dtype:
        raise SpecError(
            "file",
            f"array {name!r} is {value.dtype}{list(value.shape)}, "
            f"the spec needs {like.dtype}{list(like.shape)}",
        )
    return value


# ----------------------------------------------------------------------------- model


def _model_arrays(model: Model) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {"params": model.params}
    arrays.update({f"buffer:{k}": v for k, v in model.named_buffers().items()})
    for i, transform in enumerate(model.preprocess):
        arrays.update({f"pre:{i}:{k}": v for k, v in transform.state().items()})
    if model.labels is not None:
        arrays.update({f"labels:{k}": v for k, v in model.labels.state().items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "spec": model_to_spec(model),
        "fitted_preprocess": [t.fitted for t in model.preprocess],
        "has_labels": model.labels is not None,
    }
    return meta, arrays


def _restore_model(
    meta: dict[str, Any], arrays: dict[str, np.ndarray], max_params: int | None
) -> Model:
    model = build_model(meta.get("spec"), max_params=max_params, init=False)
    model.params[...] = _take(arrays, "params", model.params)
    for key, buf in model.named_buffers().items():
        buf[...] = _take(arrays, f"buffer:{key}", buf)
    fitted = meta.get("fitted_preprocess", [])
    for i, transform in enumerate(model.preprocess):
        if i < len(fitted) and fitted[i]:
            prefix = f"pre:{i}:"
            transform.load_state(
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )
    if meta.get("has_labels"):
        model.labels = LabelEncoder.from_state(
            {k[len("labels:") :]: v for k, v in arrays.items() if k.startswith("labels:")}
        )
    return model


def save_model(model: Model) -> bytes:
    """What prediction needs: spec, weights, buffers, fitted preprocessing and labels."""
    meta, arrays = _model_arrays(model)
    return _pack({**meta, "kind": "model"}, arrays)


def load_model(data: bytes, *, max_params: int | None = None) -> Model:
    meta, arrays = _unpack(data, "model")
    return _restore_model(meta, arrays, max_params)


# ----------------------------------------------------------------------------- training state


def save_state(trainer: Trainer) -> bytes:
    """Everything needed to continue training exactly where it stopped."""
    model = trainer.model
    meta, arrays = _model_arrays(model)
    slots, opt_meta = model.optimizer.state_dict()
    arrays.update({f"opt:{k}": v for k, v in slots.items()})
    early = trainer.early
    early_meta = None
    if early is not None:
        early_meta = {
            "best": early.best,
            "best_epoch": early.best_epoch,
            "wait": early.wait,
            "has_best": early.best_params is not None,
        }
        if early.best_params is not None:
            arrays["early:params"] = early.best_params
            arrays.update({f"early:buffer:{k}": v for k, v in early.best_buffers.items()})
    meta.update(
        kind="training_state",
        optimizer=opt_meta,
        schedule=model.schedule.state(),
        rng=trainer.rng.bit_generator.state,
        epoch=trainer.epoch,
        history=trainer.history,
        early_stopping=early_meta,
    )
    return _pack(meta, arrays)


def load_state(data: bytes, *, max_params: int | None = None) -> Trainer:
    meta, arrays = _unpack(data, "training_state")
    model = _restore_model(meta, arrays, max_params)
    try:
        model.optimizer.load_state_dict(
            {k[len("opt:") :]: v for k, v in arrays.items() if k.startswith("opt:")},
            meta["optimizer"],
        )
        model.schedule.load_state(meta["schedule"])
        trainer = Trainer(model)
        trainer.rng.bit_generator.state = meta["rng"]
        trainer.epoch = int(meta["epoch"])
        trainer.history = list(meta["history"])
        _restore_early(trainer.early, meta.get("early_stopping"), arrays, model)
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError("file", f"training state is incomplete ({exc})") from None
    return trainer


def _restore_early(
    early: EarlyStopping | None,
    meta: dict[str, Any] | None,
    arrays: dict[str, np.ndarray],
    model: Model,
) -> None:
    if early is None or meta is None:
        return
    early.best, early.best_epoch, early.wait = (
        meta["best"],
        int(meta["best_epoch"]),
        int(meta["wait"]),
    )
    if meta["has_best"]:
        early.best_params = _take(arrays, "early:params", model.params).copy()
        early.best_buffers = {
            k: _take(arrays, f"early:buffer:{k}", v).copy()
            for k, v in model.named_buffers().items()
        }
