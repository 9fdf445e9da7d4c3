"""Models and training states to bytes and back, without pickle, with validation on load."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from nn_core.datasets.synthetic import make_circle
from nn_core.errors import SpecError
from nn_core.serialize import load_model, load_state, save_model, save_state
from nn_core.spec import build_model, model_to_spec
from nn_core.training import Trainer

X, Y = make_circle(200, noise=0.05, seed=1)
SPEC = {
    "input_dim": 2,
    "preprocess": [{"type": "minmax"}],
    "layers": [
        {"type": "dense", "units": 8, "activation": "relu"},
        {"type": "batchnorm"},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ],
    "loss": "categorical_crossentropy",
    "optimizer": {"name": "rmsprop", "lr": 0.01},
    "training": {"epochs": 5, "batch_size": 16},
}


def _trained() -> Trainer:
    trainer = Trainer(build_model(SPEC))
    trainer.fit(X, np.where(Y == 1, "inside", "outside"))
    return trainer


def test_model_round_trip_predicts_identically() -> None:
    model = _trained().model
    loaded = load_model(save_model(model))
    assert model_to_spec(loaded) == model_to_spec(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_labels(X), model.predict_labels(X))
    assert list(loaded.labels.classes) == ["inside", "outside"]  # type: ignore[union-attr]


def test_no_pickle_in_the_archive() -> None:
    data = save_model(_trained().model)
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        for name in archive.files:
            assert archive[name].dtype != object, name


def _rewrite(data: bytes, name: str, value: np.ndarray) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays[name] = value
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_rejects_tampered_shapes_and_object_arrays() -> None:
    data = save_model(_trained().model)
    with pytest.raises(SpecError, match="params"):
        load_model(_rewrite(data, "params", np.zeros(3, np.float32)))
    with pytest.raises(SpecError, match="params"):
        load_model(_rewrite(data, "params", np.zeros(112, np.float64)))
    out = io.BytesIO()
    np.savez(out, __meta__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(SpecError, match="readable"):
        load_model(out.getvalue())


def _with_member(data: bytes, name: str, payload: bytes) -> bytes:
    """`data` plus one more (deflated) archive member."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr(name, payload, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array)
    return out.getvalue()


def test_rejects_zip_bombs_before_allocating() -> None:
    """200 MB of zeros deflate to 200 kB: refused from the zip directory, nothing decoded."""
    data = save_model(_trained().model)
    bomb = _with_member(data, "junk.npy", _npy(np.zeros(200_000_000, np.uint8)))
    assert len(bomb) < 1_000_000
    with pytest.raises(SpecError, match=r"would decode to 200,0\d\d,\d{3} bytes"):
        load_model(bomb)


def test_rejects_headers_promising_more_than_they_hold() -> None:
    """A header claiming 10^12 floats must not make np.load allocate them."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    )
    data = save_model(_trained().model)
    with pytest.raises(SpecError, match="declares more data than it holds"):
        load_model(_with_member(data, "huge.npy", header.getvalue() + b"\0" * 64))
    with pytest.raises(SpecError, match="unexpected member"):
        load_model(_with_member(data, "notes.txt", b"hello"))


@pytest.mark.parametrize("junk", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_rejects_junk(junk: bytes) -> None:
    with pytest.raises(SpecError):
        load_model(junk)


def test_truncated_file_is_rejected() -> None:
    data = save_model(_trained().model)
    with pytest.raises(SpecError):
        load_model(data[: len(data) // 2])


def test_kind_is_checked() -> None:
    trainer = _trained()
    with pytest.raises(SpecError, match="training_state"):
        load_model(save_state(trainer))
    with pytest.raises(SpecError, match="model"):
        load_state(save_model(trainer.model))


def test_state_round_trip_keeps_everything() -> None:
    trainer = _trained()
    loaded = load_state(save_state(trainer))
    assert loaded.epoch == trainer.epoch
    assert loaded.history == trainer.history
    assert loaded.rng.bit_generator.state == trainer.rng.bit_generator.state
    assert loaded.model.optimizer.t == trainer.model.optimizer.t
    for slot, arr in trainer.model.optimizer.state.items():
        np.testing.assert_array_equal(loaded.model.optimizer.state[slot], arr)


def test_parameter_limit_applies_on_load() -> None:
    data = save_model(_trained().model)
    with pytest.raises(SpecError, match="limit"):
        load_model(data, max_params=10)


def test_archive_is_a_plain_npz() -> None:
    data = save_model(_trained().model)
    assert zipfile.is_zipfile(io.BytesIO(data))
