"""The Transform base class and its registry of names.

Kept apart from nn_core/preprocessing.py, which holds the built-in numeric transforms and
builds any transform from its spec entry: transforms defined elsewhere (text features in
nn_core/datasets/text.py) subclass and register from here, and preprocessing imports them to
have every name registered, so neither module imports the other.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from nn_core.errors import SpecError

TRANSFORMS: dict[str, type[Transform]] = {}


def register(cls: type[Transform]) -> type[Transform]:
    TRANSFORMS[cls.name] = cls
    return cls


class Transform:
    """Base class. Subclasses set `name`, accept their config keys as keyword arguments,
    and override `fit`/`transform`/`config`/`state`/`load_state` as needed."""

    name: ClassVar[str] = ""
    #: True when the transform consumes something other than a numeric matrix (e.g. raw text).
    raw_input: ClassVar[bool] = False

    def __init__(self) -> None:
        self.fitted = False

    @classmethod
    def from_config(cls, config: dict[str, Any], field: str) -> Self:
        """Build from a spec entry (its keys besides "type" are the keyword arguments).
        Transforms raise plain ValueErrors, reported here as bad parameters of `field`."""
        params = {k: v for k, v in config.items() if k != "type"}
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:
            raise SpecError(field, f"bad parameters for {cls.name!r}: {exc}") from None

    def fit(self, x: Any) -> Transform:
        self.fitted = True
        return self

    def transform(self, x: Any, dtype: np.dtype[Any]) -> np.ndarray:
        raise NotImplementedError

    def output_dim(self, input_dim: int) -> int:
        """Feature count after this transform, given the count before it."""
        return input_dim

    def input_grad(self, grad: np.ndarray) -> np.ndarray | None:
        """d/d(input) from d/d(output), so explanations come out in raw input units; None
        when the transform is not differentiable (e.g. text features)."""
        return None

    def config(self) -> dict[str, Any]:
        return {"type": self.name}

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.fitted = True
