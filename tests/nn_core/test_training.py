"""The fit loop: dtype discipline, bit-exact resume, early stopping, stop reasons, callbacks."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from nn_core.callbacks import Callback, Cancel, Checkpoint, Progress
from nn_core.datasets.synthetic import make_spiral
from nn_core.errors import DataError, SpecError
from nn_core.optimizers import OPTIMIZERS
from nn_core.serialize import load_state, save_state
from nn_core.spec import build_model
from nn_core.training import Trainer

SPIRAL_X, SPIRAL_Y = make_spiral(300, noise=0.1, seed=0)

SPEC: dict[str, Any] = {
    "input_dim": 2,
    "preprocess": [{"type": "standardize"}],
    "layers": [
        {"type": "dense", "units": 16, "activation": "relu", "dropout": 0.1},
        {"type": "batchnorm"},
        {"type": "dense", "units": 16, "activation": "tanh", "regularizer": {"l2": 0.001}},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ],
    "loss": "categorical_crossentropy",
    "optimizer": {"name": "adam", "lr": 0.01, "clip_norm": 5.0},
    "schedule": {"name": "reduce_on_plateau", "monitor": "val_loss", "patience": 1, "factor": 0.5},
    "training": {
        "epochs": 8,
        "batch_size": 32,
        "validation_split": 0.2,
        "seed": 3,
        "early_stopping": {"monitor": "val_accuracy", "patience": 50},
    },
}


def _spec(**training: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["training"].update(training)
    return spec


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_float32_end_to_end(optimizer: str) -> None:
    spec = _spec()
    spec["optimizer"] = {"name": optimizer, "lr": 0.01}
    model = build_model(spec)
    trainer = Trainer(model)
    trainer.fit(SPIRAL_X.astype(np.float64), SPIRAL_Y, epochs=2)
    assert model.params.dtype == np.float32
    assert model.grads.dtype == np.float32
    for name, arr in model.named_params().items():
        assert arr.dtype == np.float32, name
    for name, arr in model.named_buffers().items():
        assert arr.dtype == np.float32, name
    for slot, arr in model.optimizer.state.items():
        assert arr.dtype == np.float32, slot
    assert model.predict(SPIRAL_X).dtype == np.float32


def test_float64_on_request() -> None:
    spec = _spec()
    spec["dtype"] = "float64"
    model = build_model(spec)
    Trainer(model).fit(SPIRAL_X, SPIRAL_Y, epochs=1)
    assert model.params.dtype == np.float64
    assert all(a.dtype == np.float64 for a in model.optimizer.state.values())


def test_resume_is_bit_exact() -> None:
    """2N epochs == N epochs, save, load, N more epochs: to the last bit."""
    straight = Trainer(build_model(_spec()))
    straight.fit(SPIRAL_X, SPIRAL_Y)

    first = Trainer(build_model(_spec()))
    first.fit(SPIRAL_X, SPIRAL_Y, epochs=4)
    assert first.stop_reason == "epochs_done"
    resumed = load_state(save_state(first))
    resumed.fit(SPIRAL_X, SPIRAL_Y)

    assert resumed.epoch == straight.epoch == 8
    assert resumed.model.params.tobytes() == straight.model.params.tobytes()
    for key, buf in straight.model.named_buffers().items():
        assert resumed.model.named_buffers()[key].tobytes() == buf.tobytes()
    for slot, arr in straight.model.optimizer.state.items():
        assert resumed.model.optimizer.state[slot].tobytes() == arr.tobytes()
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in straight.history]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history] == strip
    assert resumed.rng.bit_generator.state == straight.rng.bit_generator.state


def test_same_seed_same_model_and_global_rng_untouched() -> None:
    before = np.random.get_state()[1].copy()  # noqa: NPY002 - checking it stays untouched
    a = Trainer(build_model(_spec()))
    a.fit(SPIRAL_X, SPIRAL_Y, epochs=2)
    b = Trainer(build_model(_spec()))
    b.fit(SPIRAL_X, SPIRAL_Y, epochs=2)
    assert a.model.params.tobytes() == b.model.params.tobytes()
    c = Trainer(build_model(_spec(seed=4)))
    c.fit(SPIRAL_X, SPIRAL_Y, epochs=2)
    assert a.model.params.tobytes() != c.model.params.tobytes()
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_learns_spiral() -> None:
    spec = _spec(epochs=300, early_stopping=None, validation_split=0.0)
    spec["schedule"] = {"name": "constant"}
    spec["preprocess"] = []  # the arms' raw scale (radius 5) suits tanh units here
    spec["layers"] = [
        {"type": "dense", "units": 32, "activation": "tanh"},
        {"type": "dense", "units": 32, "activation": "tanh"},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ]
    model = build_model(spec)
    Trainer(model).fit(SPIRAL_X, SPIRAL_Y)
    assert (model.predict_labels(SPIRAL_X) == SPIRAL_Y).mean() >= 0.97


def test_preprocessing_fitted_on_training_split_only() -> None:
    x = np.arange(100, dtype=float).reshape(-1, 1)
    y = np.arange(100) % 2
    spec = {
        "input_dim": 1,
        "preprocess": [{"type": "standardize"}],
        "layers": [{"type": "dense", "units": 2, "activation": "softmax"}],
        "loss": "categorical_crossentropy",
        "training": {"validation_split": 0.5, "epochs": 1},
    }
    model = build_model(spec)
    trainer = Trainer(model)
    trainer.fit(x, y)
    train_idx, _ = trainer.split(100)
    mean = model.preprocess[0].state()["mean"]
    np.testing.assert_allclose(mean, [x[train_idx].mean()], rtol=1e-6)
    assert not np.isclose(mean[0], x.mean())


def test_early_stopping_restores_best_weights() -> None:
    spec = _spec(epochs=200, early_stopping={"monitor": "val_loss", "patience": 3})
    spec["optimizer"] = {"name": "sgd", "lr": 3.0}  # noisy, so val_loss stops improving
    spec["schedule"] = {"name": "constant"}
    model = build_model(spec)
    trainer = Trainer(model)
    trainer.fit(SPIRAL_X, SPIRAL_Y)
    assert trainer.stop_reason == "early_stopping"
    assert trainer.early is not None
    best = trainer.early.best_epoch
    assert len(trainer.history) == best + 3
    assert trainer.early.best == min(h["val_loss"] for h in trainer.history)
    _, val_idx = trainer.split(len(SPIRAL_X))
    again = trainer.evaluate(SPIRAL_X[val_idx], SPIRAL_Y[val_idx])
    assert again["loss"] == pytest.approx(trainer.early.best, rel=1e-5)


def test_val_monitor_without_validation_is_a_spec_error() -> None:
    spec = _spec(validation_split=0.0)
    with pytest.raises(SpecError) as err:
        Trainer(build_model(spec)).fit(SPIRAL_X, SPIRAL_Y)
    assert err.value.field == "training.early_stopping.monitor"


def test_explicit_validation_set() -> None:
    model = build_model(_spec(validation_split=0.0))
    trainer = Trainer(model)
    trainer.fit(
        SPIRAL_X[:200], SPIRAL_Y[:200], validation_data=(SPIRAL_X[200:], SPIRAL_Y[200:]), epochs=2
    )
    assert {"val_loss", "val_accuracy"} <= set(trainer.history[-1])


def test_non_finite_loss_stops_with_reason() -> None:
    spec = {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 1},
        ],
        "loss": "mse",
        "optimizer": {"name": "sgd", "lr": 1e6},
        "training": {"epochs": 50, "batch_size": 8},
    }
    x = SPIRAL_X * 100
    trainer = Trainer(build_model(spec))
    trainer.fit(x, x[:, :1] * 1e3)
    assert trainer.stop_reason in ("non_finite_loss", "non_finite_weights")
    assert trainer.epoch < 50


class _Recorder(Callback):
    def __init__(self) -> None:
        self.batches = 0
        self.epochs: list[int] = []

    def on_batch_end(self, trainer: Trainer, batch: int) -> None:
        self.batches += 1

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        self.epochs.append(logs["epoch"])


def test_callbacks_progress_checkpoint_cancel() -> None:
    spec = _spec(epochs=6, batch_size=60, early_stopping=None)
    recorder = _Recorder()
    reports: list[float] = []
    saved: list[int] = []
    trainer = Trainer(build_model(spec))
    trainer.fit(
        SPIRAL_X,
        SPIRAL_Y,
        callbacks=[
            recorder,
            Progress(lambda t, logs: reports.append(logs["loss"])),
            Checkpoint(lambda t: saved.append(t.epoch), every=2),
        ],
    )
    assert recorder.epochs == [1, 2, 3, 4, 5, 6]
    assert recorder.batches == 6 * 4  # 240 training rows / 60
    assert len(reports) == 6
    assert saved == [2, 4, 6]

    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    cancelled = Trainer(build_model(spec))
    cancelled.fit(SPIRAL_X, SPIRAL_Y, callbacks=[Cancel(should_cancel, interval=0.0)])
    assert cancelled.stop_reason == "cancelled"
    assert cancelled.epoch < 6


def test_bad_data_is_a_data_error() -> None:
    trainer = Trainer(build_model(_spec()))
    with pytest.raises(DataError) as err:
        trainer.fit(np.zeros((10, 3)), np.zeros(10))
    assert "2 features" in str(err.value)
    with pytest.raises(DataError):
        trainer.fit(np.full((10, 2), np.nan), np.zeros(10))
    with pytest.raises(DataError):
        trainer.fit(np.zeros((10, 2)), np.zeros(9))


def test_string_labels_and_predict_labels() -> None:
    labels = np.where(SPIRAL_Y == 1, "spam", "ham")
    spec = _spec(epochs=100, early_stopping=None, validation_split=0.0)
    spec["schedule"] = {"name": "constant"}
    model = build_model(spec)
    Trainer(model).fit(SPIRAL_X, labels)
    predicted = model.predict_labels(SPIRAL_X)
    assert set(predicted) <= {"spam", "ham"}
    assert (predicted == labels).mean() > 0.9
