"""Named model specs for the two flagship tasks, usable wherever a spec is expected.

A preset is an ordinary spec (JSON), so it can be printed, copied and edited by hand; the
names only save clients from writing out a network that is known to work. Each config below
was measured before it became a preset (see benchmarks/flagship.py for the current figures).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from nn_core.errors import SpecError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    spec: dict[str, Any]


MNIST_MLP = Preset(
    name="mnist-mlp",
    description=(
        "28x28 grey images (MNIST, Fashion-MNIST) -> 10 classes: pixels scaled by 1/255, "
        "784-512-256-10 ReLU MLP, softmax cross-entropy, Adam 1e-3 with a cosine schedule, "
        "20 epochs of batch 128 (0.90 test accuracy on Fashion-MNIST)"
    ),
    spec={
        "input_dim": 784,
        "preprocess": [{"type": "scale", "factor": 1.0 / 255.0}],
        "layers": [
            {"type": "dense", "units": 512, "activation": "relu"},
            {"type": "dense", "units": 256, "activation": "relu"},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 1e-3},
        "schedule": {"name": "cosine"},
        "training": {"epochs": 20, "batch_size": 128, "seed": 0},
    },
)

SPAM_MLP = Preset(
    name="spam-mlp",
    description=(
        "Raw text -> spam probability: 4096 hashed word/bigram buckets plus hand features "
        "(text_features, stored in the model so raw text scores as in training), dense 64 "
        "ReLU with dropout 0.3 and L2 1e-4, one sigmoid output, binary cross-entropy, "
        "Adam 1e-3, 30 epochs of batch 32 (about 0.99 accuracy and 0.96 spam F1 on SMS Spam)"
    ),
    spec={
        "preprocess": [{"type": "text_features", "n_features": 4096}],
        "layers": [
            {
                "type": "dense",
                "units": 64,
                "activation": "relu",
                "dropout": 0.3,
                "regularizer": {"l2": 1e-4},
            },
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ],
        "loss": "binary_crossentropy",
        "optimizer": {"name": "adam", "lr": 1e-3},
        "training": {"epochs": 30, "batch_size": 32, "seed": 0},
    },
)

PRESETS: dict[str, Preset] = {p.name: p for p in (MNIST_MLP, SPAM_MLP)}


def preset_spec(name: str, field: str = "spec") -> dict[str, Any]:
    """A fresh copy of the preset's spec (callers may edit it); SpecError naming `field`
    and the allowed names for an unknown one."""
    preset = PRESETS.get(name)
    if preset is None:
        raise SpecError(field, f"unknown preset {name!r}", PRESETS)
    return copy.deepcopy(preset.spec)
