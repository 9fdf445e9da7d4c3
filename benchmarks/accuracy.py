"""Accuracy of documented nn_core configurations on real and toy data.

Fashion-MNIST (Debian package dataset-fashion-mnist, /usr/share/datasets/fashion-mnist):
    target >= 0.89 test accuracy with <= 120 s of training on this 2-core machine
spiral and circle (TensorFlow-Playground toy sets, noise 0.05, 1000 points, 20% held out,
    5 seeds): target >= 0.98 median test accuracy. The Playground's noise relabels points by
    their jittered position, so noise also puts a ceiling on the attainable accuracy
    (circle at noise 0.1: about 0.99 for the true rule).

  python benchmarks/accuracy.py [--skip-fashion]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from nn_core.datasets.catalog import load_dataset
from nn_core.presets import preset_spec
from nn_core.spec import build_model
from nn_core.training import Trainer

# The documented Fashion-MNIST configuration (also in README.md): the mnist-mlp preset
# (784-512-256-10 ReLU, Adam 1e-3, cosine schedule, batch 128, pixels / 255) for 25 epochs.
FASHION_SPEC: dict[str, Any] = preset_spec("mnist-mlp")
FASHION_SPEC["training"]["epochs"] = 25

TOY_SPEC: dict[str, Any] = {
    "input_dim": 2,
    "layers": [
        {"type": "dense", "units": 32, "activation": "tanh"},
        {"type": "dense", "units": 32, "activation": "tanh"},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ],
    "loss": "categorical_crossentropy",
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {
        "epochs": 500,
        "batch_size": 32,
        "validation_split": 0.2,
        "early_stopping": {"monitor": "val_loss", "patience": 20},
        "seed": 0,
    },
}
TOY_NOISE = 0.05
TOY_SEEDS = range(5)


def train_and_score(
    name: str, spec: dict[str, Any], cache: str, seed: int = 0, **options: Any
) -> tuple[float, Trainer, int, float]:
    """Test accuracy, the trainer, training rows and training seconds."""
    data = load_dataset(name, cache_dir=cache, seed=seed, **options)
    spec = copy.deepcopy(spec)
    spec["training"]["seed"] = seed
    trainer = Trainer(build_model(spec))
    start = time.perf_counter()
    trainer.fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(trainer.model.predict_labels(data.X_test) == data.y_test))
    return accuracy, trainer, len(data.X_train), seconds


def toy(name: str, cache: str) -> bool:
    runs = [
        train_and_score(name, TOY_SPEC, cache, seed, noise=TOY_NOISE, n_samples=1000)
        for seed in TOY_SEEDS
    ]
    accuracies = sorted(r[0] for r in runs)
    median = statistics.median(accuracies)
    ok = median >= 0.98
    epochs = statistics.median(r[1].epoch for r in runs)
    print(
        f"{name:<14} test accuracy median {median:.4f} (min {accuracies[0]:.4f}, "
        f"{len(runs)} seeds, noise {TOY_NOISE}; target >= 0.98), median {epochs:.0f} epochs "
        f"-> {'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def fashion(cache: str) -> bool:
    accuracy, trainer, rows, seconds = train_and_score("fashion-mnist", FASHION_SPEC, cache)
    ok = accuracy >= 0.89 and seconds <= 120
    print(
        f"fashion-mnist  test accuracy {accuracy:.4f} (target >= 0.89), {rows} training rows, "
        f"{trainer.epoch} epochs in {seconds:.1f} s (target <= 120 s) "
        f"-> {'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-fashion", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        results = [toy("spiral", cache), toy("circle", cache)]
        if not args.skip_fashion:
            results.append(fashion(cache))
    print("all targets met" if all(results) else "some targets missed")


if __name__ == "__main__":
    main()
