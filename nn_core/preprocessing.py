"""Input transforms that are part of the model: fitted on the training split only, stored in the
model state, and applied the same way at predict time.

A transform is registered by name so a spec's ``"preprocess": [{"type": "standardize"}, ...]``
builds it and ``config()`` gives the same dict back. Fitted values live in ``state()`` as plain
arrays so they serialize without pickle. The base class and registry are in nn_core/transforms.py
(see why there); the names stay importable from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Imported for its registration of "text_features", so build_transform knows every name.
from nn_core.datasets.text import TextFeatures as TextFeatures
from nn_core.errors import DataError, SpecError
from nn_core.transforms import TRANSFORMS, Transform, register


def build_transform(config: dict[str, Any], field: str = "preprocess") -> Transform:
    """Build a transform from its spec entry, naming the field on any error."""
    if not isinstance(config, dict):
        raise SpecError(field, "must be an object with a 'type'")
    kind = config.get("type")
    if kind not in TRANSFORMS:
        raise SpecError(f"{field}.type", f"unknown transform {kind!r}", TRANSFORMS)
    return TRANSFORMS[kind].from_config(config, field)


def as_matrix(x: Any, dtype: np.dtype[Any], field: str = "X") -> np.ndarray:
    """Coerce numeric input to a finite 2-D array of `dtype`, with a clear error otherwise."""
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(field, f"must be numeric: {exc}") from None
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if not np.isfinite(arr).all():
        raise DataError(field, "contains NaN or infinite values")
    return arr


#: Rows per block when accumulating statistics, so fitting never copies the whole training set.
STATS_BLOCK = 4096


def _fitted_matrix(x: Any) -> np.ndarray:
    """Training data for fitting: float inputs keep their dtype (no float64 copy of a big set)."""
    arr = np.asarray(x)
    dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float64)
    arr = as_matrix(arr, dtype, "X")
    if arr.shape[0] == 0:
        raise DataError("X", "needs at least one row to fit")
    return arr


def _mean_std(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and population std with float64 accumulators, block by block (two
    passes, so no catastrophic cancellation from sum-of-squares)."""
    blocks = range(0, len(arr), STATS_BLOCK)
    total = np.zeros(arr.shape[1])
    for i in blocks:
        total += arr[i : i + STATS_BLOCK].sum(axis=0, dtype=np.float64)
    mean = total / len(arr)
    squares = np.zeros(arr.shape[1])
    for i in blocks:
        dev = arr[i : i + STATS_BLOCK].astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", dev, dev)
    return mean, np.sqrt(squares / len(arr))


def _check_width(arr: np.ndarray, width: int, name: str) -> None:
    if arr.shape[1] != width:
        raise DataError("X", f"{name} was fitted on {width} features, got {arr.shape[1]}")


def _state_vector(arrays: dict[str, np.ndarray], key: str, name: str) -> np.ndarray:
    if key not in arrays:
        raise SpecError(f"state.{key}", f"missing from the stored {name} state")
    arr = np.asarray(arrays[key])
    if arr.ndim != 1 or arr.dtype.kind != "f" or not np.isfinite(arr).all():
        raise SpecError(
            f"state.{key}", f"must be a finite 1-D float array, got {arr.dtype}{arr.shape}"
        )
    return arr.astype(np.float64)


def _require_fitted(transform: Transform) -> None:
    if not transform.fitted:
        raise RuntimeError(f"{transform.name}: call fit() before transform()")


class _ShiftScale(Transform):
    """(x - shift) / scale per feature; subclasses choose shift and scale in `fit`.

    The statistics are kept in float64 and cast to the requested dtype at transform time, so a
    float32 model stays float32 (NEP 50 would promote float32 * float64 arrays to float64).
    """

    def __init__(self) -> None:
        super().__init__()
        self.shift = np.zeros(0)
        self.scale = np.ones(0)

    def transform(self, x: Any, dtype: np.dtype[Any]) -> np.ndarray:
        _require_fitted(self)
        arr = as_matrix(x, dtype, "X")
        _check_width(arr, len(self.shift), self.name)
        out = arr - self.shift.astype(arr.dtype)
        out /= self.scale.astype(arr.dtype)
        return out

    def input_grad(self, grad: np.ndarray) -> np.ndarray:
        return grad / self.scale.astype(grad.dtype)

    def _set(self, shift: np.ndarray, scale: np.ndarray) -> None:
        if shift.shape != scale.shape:
            raise SpecError("state", f"{self.name} state arrays differ in length")
        if (scale <= 0).any():
            raise SpecError("state", f"{self.name} scale must be positive")
        self.shift, self.scale = shift, scale
        self.fitted = True


@register
class Standardize(_ShiftScale):
    """Zero mean, unit variance per feature; a constant feature gets std 1 (so it maps to 0)."""

    name = "standardize"

    def fit(self, x: Any) -> Standardize:
        mean, std = _mean_std(_fitted_matrix(x))
        # Rounding leaves a tiny non-zero std on constant columns; treat it as zero like sklearn.
        std[std <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
        self._set(mean, std)
        return self

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.shift.copy(), "std": self.scale.copy()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set(_state_vector(arrays, "mean", self.name), _state_vector(arrays, "std", self.name))


@register
class MinMax(_ShiftScale):
    """Scale each feature to [0, 1] over the training range; a constant feature maps to 0.

    Values outside the training range land outside [0, 1]; they are not clipped.
    """

    name = "minmax"

    def fit(self, x: Any) -> MinMax:
        arr = _fitted_matrix(x)
        low = arr.min(axis=0).astype(np.float64)
        span = arr.max(axis=0).astype(np.float64) - low
        span[span == 0] = 1.0
        self._set(low, span)
        return self

    def state(self) -> dict[str, np.ndarray]:
        return {"min": self.shift.copy(), "scale": self.scale.copy()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set(
            _state_vector(arrays, "min", self.name), _state_vector(arrays, "scale", self.name)
        )


def _finite_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


@register
class Scale(Transform):
    """x * factor + offset with fixed constants (e.g. factor 1/255 for pixels); nothing to fit."""

    name = "scale"

    def __init__(self, factor: float = 1.0, offset: float = 0.0) -> None:
        super().__init__()
        self.factor = _finite_number(factor, "factor")
        self.offset = _finite_number(offset, "offset")
        if self.factor == 0:
            raise ValueError("factor must not be 0")
        self.fitted = True

    def transform(self, x: Any, dtype: np.dtype[Any]) -> np.ndarray:
        arr = as_matrix(x, dtype, "X")
        out = arr * arr.dtype.type(self.factor)
        if self.offset:
            out += arr.dtype.type(self.offset)
        return out

    def input_grad(self, grad: np.ndarray) -> np.ndarray:
        return grad * grad.dtype.type(self.factor)

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "factor": self.factor, "offset": self.offset}


#: The input features of the TensorFlow Playground, over 2-D input (columns x1, x2).
FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin x1", "sin x2")


@register
class Features(Transform):
    """Derived columns of a 2-D input, as the TensorFlow Playground's feature picker:
    any of x1, x2, x1^2, x2^2, x1*x2, sin x1, sin x2, in the order given; nothing to fit."""

    name = "features"

    def __init__(self, columns: list[str] | tuple[str, ...] = ("x1", "x2")) -> None:
        super().__init__()
        if isinstance(columns, str) or not isinstance(columns, list | tuple) or not columns:
            raise ValueError(f"columns must be a non-empty list of {list(FEATURES)}")
        unknown = [c for c in columns if c not in FEATURES]
        if unknown:
            raise ValueError(f"unknown columns {unknown}; choose from {list(FEATURES)}")
        if len(set(columns)) != len(columns):
            raise ValueError("columns must not repeat")
        self.columns = [str(c) for c in columns]
        self.fitted = True

    def transform(self, x: Any, dtype: np.dtype[Any]) -> np.ndarray:
        arr = as_matrix(x, dtype, "X")
        if arr.shape[1] != 2:
            raise DataError("X", f"features reads 2 columns (x1, x2), got {arr.shape[1]}")
        x1, x2 = arr[:, 0], arr[:, 1]
        made = {
            "x1": lambda: x1,
            "x2": lambda: x2,
            "x1^2": lambda: x1 * x1,
            "x2^2": lambda: x2 * x2,
            "x1*x2": lambda: x1 * x2,
            "sin x1": lambda: np.sin(x1),
            "sin x2": lambda: np.sin(x2),
        }
        return np.stack([made[c]() for c in self.columns], axis=1).astype(arr.dtype, copy=False)

    def output_dim(self, input_dim: int) -> int:
        if input_dim != 2:
            raise SpecError("input_dim", f"must be 2 for the 'features' transform, got {input_dim}")
        return len(self.columns)

    def input_grad(self, grad: np.ndarray) -> np.ndarray | None:
        return None  # needs the input; explanations of derived columns are not supported

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "columns": list(self.columns)}


# ----------------------------------------------------------------------------- labels


class LabelEncoder:
    """Class labels <-> indices 0..k-1, fitted on the training labels.

    Labels may be integers, strings, or one-hot rows (whose classes are 0..k-1). Classes are
    kept sorted in a plain int64 or unicode array so the state saves without pickle.
    """

    #: How many known classes an "unknown label" error lists.
    SHOWN = 10

    def __init__(self, classes: np.ndarray | None = None) -> None:
        self.classes: np.ndarray = np.zeros(0, dtype=np.int64)
        if classes is not None:
            self.classes = _check_classes(np.asarray(classes))

    @property
    def fitted(self) -> bool:
        return len(self.classes) > 0

    def fit(self, y: Any) -> LabelEncoder:
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] > 1:
            self.classes = np.arange(arr.shape[1], dtype=np.int64)
            return self
        labels = _label_vector(arr)
        if len(labels) == 0:
            raise DataError("y", "needs at least one label to fit")
        self.classes = np.unique(labels)
        return self

    def encode(self, y: Any) -> np.ndarray:
        """Labels (or one-hot rows) -> int64 class indices; unknown labels raise DataError."""
        if not self.fitted:
            raise RuntimeError("LabelEncoder: call fit() before encode()")
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] > 1:
            return self._encode_one_hot(arr)
        labels = _label_vector(arr)
        if len(labels) == 0:
            return np.zeros(0, dtype=np.int64)
        if _kind(labels) != _kind(self.classes):
            self._unknown(np.unique(labels))
        idx = np.searchsorted(self.classes, labels)
        idx = np.minimum(idx, len(self.classes) - 1)
        bad = self.classes[idx] != labels
        if bad.any():
            self._unknown(np.unique(labels[bad]))
        return idx.astype(np.int64)

    def decode(self, idx: Any) -> np.ndarray:
        """Class indices -> labels."""
        arr = np.asarray(idx)
        if arr.size and arr.dtype.kind not in "iu":
            raise DataError("y", f"class indices must be integers, got {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= len(self.classes)):
            raise DataError("y", f"class index out of range 0..{len(self.classes) - 1}")
        return self.classes[arr]

    def state(self) -> dict[str, np.ndarray]:
        return {"classes": self.classes.copy()}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> LabelEncoder:
        if "classes" not in arrays:
            raise SpecError("state.classes", "missing from the stored label state")
        return cls(np.asarray(arrays["classes"]))

    def _encode_one_hot(self, arr: np.ndarray) -> np.ndarray:
        if arr.shape[1] != len(self.classes):
            raise DataError(
                "y", f"one-hot rows need {len(self.classes)} columns, got {arr.shape[1]}"
            )
        if (
            arr.dtype.kind not in "biuf"
            or not np.isin(arr, (0, 1)).all()
            or (arr.sum(axis=1) != 1).any()
        ):
            raise DataError("y", "one-hot rows must hold a single 1 and zeros elsewhere")
        return arr.argmax(axis=1).astype(np.int64)

    def _unknown(self, labels: np.ndarray) -> None:
        shown = ", ".join(repr(v) for v in self.classes[: self.SHOWN].tolist())
        more = (
            f" and {len(self.classes) - self.SHOWN} more" if len(self.classes) > self.SHOWN else ""
        )
        unknown = ", ".join(repr(v) for v in labels[:5].tolist())
        raise DataError("y", f"unknown label(s) {unknown}; known classes: {shown}{more}")


def _kind(arr: np.ndarray) -> str:
    return "U" if arr.dtype.kind == "U" else "i"


def _label_vector(arr: np.ndarray) -> np.ndarray:
    """Labels as a 1-D int64 or unicode array; integral floats become ints."""
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError("y", f"labels must be 1-D (or one-hot rows), got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "biu":
        return arr.astype(np.int64)
    if kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise DataError(
                "y", "float labels must be whole numbers (use a regression loss for reals)"
            )
        return arr.astype(np.int64)
    if kind in "US":
        return arr.astype(str)
    if kind == "O" and all(isinstance(v, str) for v in arr.tolist()):
        return arr.astype(str)
    if kind == "O" and all(isinstance(v, int) and not isinstance(v, bool) for v in arr.tolist()):
        return arr.astype(np.int64)
    raise DataError("y", f"labels must be integers or strings, got {arr.dtype}")


def _check_classes(classes: np.ndarray) -> np.ndarray:
    if classes.ndim != 1 or len(classes) == 0 or classes.dtype.kind not in "iuU":
        raise SpecError(
            "state.classes", f"must be a non-empty 1-D int or unicode array, got {classes.dtype}"
        )
    classes = classes.astype(np.int64) if classes.dtype.kind in "iu" else classes
    if len(classes) > 1 and not (classes[1:] > classes[:-1]).all():
        raise SpecError("state.classes", "must be sorted and unique")
    return classes
