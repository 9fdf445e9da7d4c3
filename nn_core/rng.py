"""Seeded random streams. Each purpose gets its own stream spawned from the spec's seed, so
weight initialisation, the validation split and per-epoch shuffling/dropout never disturb each
other, and nothing touches NumPy's global generator."""

from __future__ import annotations

import numpy as np

_INIT, _TRAIN, _SPLIT = 0, 1, 2


def _stream(seed: int, purpose: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(purpose,))))


def init_rng(seed: int) -> np.random.Generator:
    """Weight initialisation."""
    return _stream(seed, _INIT)


def train_rng(seed: int) -> np.random.Generator:
    """Shuffling and dropout masks; its state is saved with training checkpoints."""
    return _stream(seed, _TRAIN)


def split_rng(seed: int) -> np.random.Generator:
    """The validation split, drawn once, so a resumed run sees the same split."""
    return _stream(seed, _SPLIT)
