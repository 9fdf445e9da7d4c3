"""The 2-D toy sets of the TensorFlow Playground: four binary classification problems and its
two regression problems.

Each follows the Playground's recipe (coordinates roughly in [-6, 6], ``noise`` in [0, 0.5] like
its slider). Classifiers (`SYNTHETIC`) return ``(X float32 (n, 2), y int64 (n,))`` with labels
0/1; regressions (`SYNTHETIC_REGRESSION`) return ``(X float32 (n, 2), y float32 (n, 1))`` with
values in [-1, 1]. All are shuffled. All randomness comes from
``numpy.random.default_rng(seed)``, so a seed gives the same data everywhere and the global RNG
is never touched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nn_core.errors import SpecError

Maker = Callable[[int, float, int | None], tuple[np.ndarray, np.ndarray]]


def _check(n_samples: int, noise: float) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer):
        raise SpecError("n_samples", f"must be an integer, got {n_samples!r}")
    if not 1 <= n_samples <= 10_000_000:
        raise SpecError("n_samples", f"must be between 1 and 10000000, got {n_samples}")
    if isinstance(noise, bool) or not np.isfinite(noise) or noise < 0:
        raise SpecError("noise", f"must be a finite number >= 0, got {noise!r}")


def _finish(
    rng: np.random.Generator, x: np.ndarray, positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), positive[order].astype(np.int64)


def _halves(n_samples: int) -> tuple[int, int]:
    return n_samples - n_samples // 2, n_samples // 2


def make_xor(
    n_samples: int = 200, noise: float = 0.0, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Points in the four quadrants; class 1 where x*y >= 0. Noise perturbs the point used
    for the label (as in the Playground), so noisy labels appear near the axes."""
    _check(n_samples, noise)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-5.0, 5.0, size=(n_samples, 2))
    x += np.where(x > 0, 0.3, -0.3)  # a gap around the axes
    jitter = rng.uniform(-5.0, 5.0, size=(n_samples, 2)) * noise
    moved = x + jitter
    return _finish(rng, x, moved[:, 0] * moved[:, 1] >= 0)


def make_circle(
    n_samples: int = 200, noise: float = 0.0, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 inside radius 2.5, class 0 on a ring from 3.5 to 5; noisy points are labelled
    by where their perturbed position falls."""
    _check(n_samples, noise)
    rng = np.random.default_rng(seed)
    n_in, n_out = _halves(n_samples)
    radius = np.concatenate([rng.uniform(0.0, 2.5, n_in), rng.uniform(3.5, 5.0, n_out)])
    angle = rng.uniform(0.0, 2 * np.pi, n_samples)
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    jitter = rng.uniform(-5.0, 5.0, size=(n_samples, 2)) * noise
    return _finish(rng, x, np.hypot(*(x + jitter).T) < 2.5)


def make_gauss(
    n_samples: int = 200, noise: float = 0.0, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs at (2, 2) (class 1) and (-2, -2) (class 0); variance grows from 0.5
    at noise 0 to 4 at noise 0.5, as in the Playground."""
    _check(n_samples, noise)
    rng = np.random.default_rng(seed)
    n_pos, n_neg = _halves(n_samples)
    std = np.sqrt(0.5 + 7.0 * noise)
    centres = np.repeat([[2.0, 2.0], [-2.0, -2.0]], [n_pos, n_neg], axis=0)
    x = centres + rng.normal(0.0, std, size=(n_samples, 2))
    return _finish(rng, x, np.arange(n_samples) < n_pos)


def make_spiral(
    n_samples: int = 200, noise: float = 0.0, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved arms (1.75 turns, radius 0 to 5), the second rotated by pi; noise adds
    uniform jitter of up to +-noise to each coordinate."""
    _check(n_samples, noise)
    rng = np.random.default_rng(seed)
    arms = []
    for count, delta in zip(_halves(n_samples), (0.0, np.pi), strict=True):
        frac = np.arange(count) / max(count, 1)
        r = 5.0 * frac
        t = 1.75 * 2 * np.pi * frac + delta
        arms.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
    x = np.concatenate(arms)
    x += rng.uniform(-1.0, 1.0, size=x.shape) * noise
    return _finish(rng, x, np.arange(n_samples) < len(arms[0]))


SYNTHETIC: dict[str, Maker] = {
    "xor": make_xor,
    "circle": make_circle,
    "gauss": make_gauss,
    "spiral": make_spiral,
}


# ----------------------------------------------------------------------------- regression

#: The multi-gaussian bumps: (x1, x2, height), a checkerboard of signs as in the Playground.
GAUSSIAN_BUMPS = np.array(
    [
        [-4.0, 2.5, 1.0],
        [0.0, 2.5, -1.0],
        [4.0, 2.5, 1.0],
        [-4.0, -2.5, -1.0],
        [0.0, -2.5, 1.0],
        [4.0, -2.5, -1.0],
    ]
)
#: Standard deviation of each bump: neighbours 4 apart barely overlap (exp(-8)), so the sum
#: stays inside [-1, 1] and each bump reads as its own hill or valley.
GAUSSIAN_WIDTH = 1.0


def plane(x: np.ndarray) -> np.ndarray:
    """The plane's target: (x1 + x2) / 10, the Playground's scale; [-1, 1] on [-5, 5]^2."""
    return (x[:, 0] + x[:, 1]) / 10.0


def multi_gaussian(x: np.ndarray) -> np.ndarray:
    """The multi-gaussian target: the sum of the GAUSSIAN_BUMPS, each height * exp(-d^2/2s^2)."""
    d2 = ((x[:, None, :] - GAUSSIAN_BUMPS[None, :, :2]) ** 2).sum(axis=2)
    return (GAUSSIAN_BUMPS[:, 2] * np.exp(-d2 / (2 * GAUSSIAN_WIDTH**2))).sum(axis=1)


def _regression(
    target: Callable[[np.ndarray], np.ndarray], n_samples: int, noise: float, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on [-5, 5]^2 valued by `target` at a perturbed position (noise moves
    the point, as in the Playground, so values stay those of the function), clipped to
    [-1, 1]."""
    _check(n_samples, noise)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-5.0, 5.0, size=(n_samples, 2))
    jitter = rng.uniform(-5.0, 5.0, size=(n_samples, 2)) * noise
    y = np.clip(target(x + jitter), -1.0, 1.0)
    order = rng.permutation(n_samples)
    return x[order].astype(np.float32), y[order].reshape(-1, 1).astype(np.float32)


def make_plane(
    n_samples: int = 200, noise: float = 0.0, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A tilted plane: y = (x1 + x2) / 10, exactly linear without noise."""
    return _regression(plane, n_samples, noise, seed)


def make_multi_gaussian(
    n_samples: int = 200, noise: float = 0.0, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Six Gaussian hills and valleys (GAUSSIAN_BUMPS) summed over the plane."""
    return _regression(multi_gaussian, n_samples, noise, seed)


SYNTHETIC_REGRESSION: dict[str, Maker] = {
    "plane": make_plane,
    "multi-gaussian": make_multi_gaussian,
}
