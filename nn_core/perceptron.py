"""The classic Rosenblatt perceptron: a step unit trained with the perceptron learning rule
``w += lr * (t - y) * x`` (t, y in {0, 1}), updating after each sample.

It converges on linearly separable data and can never learn XOR, which is the lesson: a single
linear threshold unit cannot, while a two-layer MLP trained by backpropagation can.
"""

from __future__ import annotations

import numpy as np


class Perceptron:
    def __init__(self, n_features: int, lr: float = 1.0, seed: int = 0) -> None:
        self.lr = lr
        self.rng = np.random.default_rng(seed)
        self.w = np.zeros(n_features)
        self.b = 0.0
        #: misclassified samples in each epoch of the last fit
        self.errors: list[int] = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        """1 where w.x + b > 0, else 0 (the step activation)."""
        return (np.asarray(x, dtype=float) @ self.w + self.b > 0).astype(np.int64)

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int = 100, shuffle: bool = True) -> bool:
        """Train; True if an epoch passed with no mistakes (converged)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=np.int64)
        self.errors = []
        for _ in range(epochs):
            order = self.rng.permutation(len(x)) if shuffle else np.arange(len(x))
            mistakes = 0
            for i in order:
                delta = y[i] - int(x[i] @ self.w + self.b > 0)
                if delta:
                    self.w += self.lr * delta * x[i]
                    self.b += self.lr * delta
                    mistakes += 1
            self.errors.append(mistakes)
            if mistakes == 0:
                return True
        return False
