"""JSON model spec <-> model.

A spec is plain JSON, e.g.::

    {
      "input_dim": 2,
      "preprocess": [{"type": "standardize"}],
      "layers": [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 2, "activation": "softmax"}
      ],
      "loss": "categorical_crossentropy",
      "optimizer": {"name": "adam", "lr": 0.01},
      "schedule": {"name": "constant"},
      "training": {"epochs": 200, "batch_size": 4, "seed": 0}
    }

`model_to_spec(build_model(spec))` returns the spec with every default filled in, and building
that again gives the same spec (the round trip is tested for every registered name). Every
error is a SpecError naming the field and, where the set is finite, the allowed values.

Each part comes from its family's `build_*` / `from_config`, which call the same keyword
constructors a Python user calls (``Dense(units=8, activation="tanh")``, ``Adam(lr=0.01)``;
see nn_core/params.py), so a Model built from objects has the same spec and behaviour.
"""

from __future__ import annotations

from typing import Any

from nn_core.errors import SpecError
from nn_core.layers import build_layer
from nn_core.losses import build_loss
from nn_core.model import Model
from nn_core.optimizers import build_optimizer
from nn_core.params import check_choice, check_int, check_keys, check_object
from nn_core.preprocessing import build_transform
from nn_core.schedules import build_schedule
from nn_core.training_config import build_training

SPEC_KEYS = (
    "input_dim",
    "dtype",
    "preprocess",
    "layers",
    "loss",
    "optimizer",
    "schedule",
    "training",
)
DTYPES = ("float32", "float64")


def build_model(spec: Any, *, max_params: int | None = None, init: bool = True) -> Model:
    """Build (and by default initialise, from the spec's seed) a model from a spec."""
    check_object(spec, "spec")
    check_keys(spec, "", SPEC_KEYS)
    input_dim = spec.get("input_dim")
    if input_dim is not None:
        input_dim = check_int(input_dim, "input_dim", low=1)
    preprocess = spec.get("preprocess") or []
    if not isinstance(preprocess, list):
        raise SpecError("preprocess", "must be a list of transforms")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError("layers", "must be a non-empty list of layers")
    if "loss" not in spec:
        raise SpecError("loss", "is required")
    return Model(
        input_dim=input_dim,
        preprocess=[build_transform(t, f"preprocess[{i}]") for i, t in enumerate(preprocess)],
        layers=[build_layer(layer, f"layers[{i}]") for i, layer in enumerate(layers)],
        loss=build_loss(spec["loss"]),
        optimizer=build_optimizer(spec.get("optimizer", {"name": "sgd"})),
        schedule=build_schedule(spec.get("schedule")),
        training=build_training(spec.get("training")),
        dtype=check_choice(spec.get("dtype", "float32"), "dtype", DTYPES),
        max_params=max_params,
        init=init,
    )


def model_to_spec(model: Model) -> dict[str, Any]:
    """The complete spec of a model, every default filled in."""
    return {
        "input_dim": model.input_dim,
        "dtype": str(model.dtype),
        "preprocess": [t.config() for t in model.preprocess],
        "layers": [layer.config() for layer in model.layers],
        "loss": model.loss.config(),
        "optimizer": model.optimizer.config(),
        "schedule": model.schedule.config(),
        "training": model.training.config(),
    }


def normalize_spec(spec: Any, *, max_params: int | None = None) -> dict[str, Any]:
    """Validate a spec and return its complete form (without allocating an initialised model
    beyond the parameter vector)."""
    return model_to_spec(build_model(spec, max_params=max_params, init=False))
