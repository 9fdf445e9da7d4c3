"""The Sequential model: preprocessing, layers and loss, with one flat parameter vector.

The model also carries the optimizer, schedule and training configuration from its spec, so
``model.to_spec()`` gives back the complete spec that built it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nn_core.errors import DataError, SpecError
from nn_core.heads import Decoded
from nn_core.layers import Layer
from nn_core.losses import Loss
from nn_core.optimizers import SGD, Optimizer
from nn_core.preprocessing import LabelEncoder, Transform, as_matrix
from nn_core.rng import init_rng
from nn_core.schedules import Constant, Cosine, Schedule
from nn_core.training_config import TrainingConfig

PREDICT_BATCH = 4096


@dataclass(frozen=True)
class ParamSlot:
    """Where one named parameter lives in the flat vector."""

    key: str  # stable name, e.g. "layers.0.W"
    layer: int
    name: str
    offset: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


class Model:
    def __init__(
        self,
        *,
        input_dim: int | None,
        layers: list[Layer],
        loss: Loss,
        optimizer: Optimizer | None = None,
        schedule: Schedule | None = None,
        training: TrainingConfig | None = None,
        preprocess: list[Transform] | None = None,
        dtype: str = "float32",
        max_params: int | None = None,
        init: bool = True,
    ) -> None:
        """A model with the spec's defaults for what is not given (SGD, a constant rate, the
        default TrainingConfig). `init`: draw the weights from the training seed now (off
        when a saved state will overwrite them)."""
        self.input_dim = input_dim
        self.layers = layers
        self.loss = loss
        self.optimizer = optimizer if optimizer is not None else SGD()
        self.schedule = schedule if schedule is not None else Constant()
        self.training = training if training is not None else TrainingConfig()
        self.preprocess = preprocess or []
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        self.labels: LabelEncoder | None = None
        if isinstance(self.schedule, Cosine):
            self.schedule.default_t_max = self.training.epochs
        self._check_output()
        self._build(max_params)
        if init:
            self.init_params(init_rng(self.training.seed))

    # ----------------------------------------------------------------- construction

    def _check_output(self) -> None:
        if not self.layers:
            raise SpecError("layers", "needs at least one layer")
        fused = self.loss.fused_activation
        if fused is None:
            return
        last = self.layers[-1]
        activation = last.output_activation
        if activation is None or activation.name != fused:
            raise SpecError(
                f"layers[{len(self.layers) - 1}].activation",
                f"loss {self.loss.name!r} needs a {fused!r} output layer "
                f"(the loss applies it to the logits)",
                [fused],
            )
        last.fuse_output()

    def network_input_dim(self) -> int:
        dim = self.input_dim
        for i, transform in enumerate(self.preprocess):
            if dim is None and not transform.raw_input:
                raise SpecError(
                    "input_dim", "is required unless the first transform reads raw input"
                )
            dim = transform.output_dim(dim if dim is not None else 0)
            if dim < 1:
                raise SpecError(f"preprocess[{i}]", "produces no features")
        if dim is None:
            raise SpecError("input_dim", "is required")
        return dim

    def _build(self, max_params: int | None) -> None:
        width = self.network_input_dim()
        slots: list[ParamSlot] = []
        offset = 0
        for i, layer in enumerate(self.layers):
            width = layer.build(width, self.dtype)
            for spec in layer.param_specs():
                slot = ParamSlot(f"layers.{i}.{spec.name}", i, spec.name, offset, spec.shape)
                slots.append(slot)
                offset += slot.size
        self.head = self.loss.head(width, f"layers[{len(self.layers) - 1}].units")
        if max_params is not None and offset > max_params:
            # Checked before allocating: a spec must not be able to exhaust memory.
            raise SpecError(
                "layers", f"the model has {offset:,} parameters; the limit is {max_params:,}"
            )
        self.output_dim = width
        self.slots = slots
        self.params = np.zeros(offset, dtype=self.dtype)
        self.grads = np.zeros(offset, dtype=self.dtype)
        for i, layer in enumerate(self.layers):
            mine = [s for s in slots if s.layer == i]
            layer.bind(
                {s.name: self._view(self.params, s) for s in mine},
                {s.name: self._view(self.grads, s) for s in mine},
            )
        self.optimizer.bind(self.params)

    @staticmethod
    def _view(flat: np.ndarray, slot: ParamSlot) -> np.ndarray:
        return flat[slot.offset : slot.offset + slot.size].reshape(slot.shape)

    def init_params(self, rng: np.random.Generator) -> None:
        for layer in self.layers:
            layer.init(rng)

    @property
    def n_params(self) -> int:
        return int(self.params.size)

    def named_params(self) -> dict[str, np.ndarray]:
        return {slot.key: self._view(self.params, slot) for slot in self.slots}

    def named_buffers(self) -> dict[str, np.ndarray]:
        return {
            f"layers.{i}.{name}": buf
            for i, layer in enumerate(self.layers)
            for name, buf in layer.buffers.items()
        }

    # ----------------------------------------------------------------- computation

    @property
    def is_classifier(self) -> bool:
        return self.head.is_classifier

    def forward(
        self, x: np.ndarray, training: bool = False, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Network output: logits when the loss fuses the output activation."""
        for layer in self.layers:
            x = layer.forward(x, training, rng)
        return x

    def infer(self, x: np.ndarray) -> np.ndarray:
        """`forward(x)` in evaluation mode for serving: nothing is kept for a backward pass
        (explanations call `forward`), and each layer works in place on the buffers this pass
        allocated. Returns an array the caller owns, never `x` itself."""
        owned = False
        for layer in self.layers:
            out = layer.infer(x, owned)
            owned = owned or out is not x
            x = out
        return x if owned else x.copy()

    def backward(self, grad: np.ndarray) -> None:
        """Fill `self.grads` from dL/d(output), including regularisation penalties."""
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            result = self.layers[i].backward(grad, need_input_grad=i > 0)
            if i > 0:
                assert result is not None
                grad = result
        if self.regularized:
            for layer in self.layers:
                layer.add_penalty_grads()

    def backward_to_input(self, grad: np.ndarray) -> np.ndarray:
        """d(output)/d(network input) for any output gradient `grad`, through every layer's
        own backward pass (after a `forward`); explanations start here. No penalties."""
        for layer in reversed(self.layers):
            result = layer.backward(grad, need_input_grad=True)
            assert result is not None
            grad = result
        return grad

    def preprocess_input_grad(self, grad: np.ndarray) -> np.ndarray:
        """A gradient on the network input carried back through the (affine) transforms to
        the raw input; DataError naming the transform that is not differentiable."""
        for i in range(len(self.preprocess) - 1, -1, -1):
            result = self.preprocess[i].input_grad(grad)
            if result is None:
                raise DataError(
                    f"preprocess[{i}]",
                    f"{self.preprocess[i].name!r} is not differentiable; explain the "
                    "featurized input instead",
                )
            grad = result
        return grad

    @property
    def regularized(self) -> bool:
        return any(layer.regularized for layer in self.layers)

    def penalty(self) -> float:
        return sum(layer.penalty() for layer in self.layers)

    def set_frozen_masks(self, frozen: bool) -> None:
        for layer in self.layers:
            layer.set_frozen_masks(frozen)

    # ----------------------------------------------------------------- data

    @property
    def raw_input(self) -> bool:
        return bool(self.preprocess) and self.preprocess[0].raw_input

    def fit_preprocessing(self, x: Any, y: Any | None = None) -> None:
        """Fit transforms (and the label encoder) on the training split only."""
        data = x if self.raw_input else as_matrix(x, self.dtype, "X")
        if not self.raw_input:
            self._check_width(data)
        for transform in self.preprocess:
            transform.fit(data)
            data = transform.transform(data, self.dtype)
        if y is not None and self.is_classifier and self.labels is None:
            self.labels = LabelEncoder().fit(self._label_array(y))

    def encode_inputs(self, x: Any, field: str = "X") -> np.ndarray:
        """Raw inputs -> the network's input matrix (through the fitted transforms)."""
        if self.raw_input:
            data = x
        else:
            data = as_matrix(x, self.dtype, field)
            self._check_width(data, field)
        for transform in self.preprocess:
            data = transform.transform(data, self.dtype)
        return np.ascontiguousarray(data, dtype=self.dtype)

    def _check_width(self, x: np.ndarray, field: str = "X") -> None:
        if self.input_dim is not None and x.shape[1] != self.input_dim:
            raise DataError(field, f"expected {self.input_dim} features per row, got {x.shape[1]}")

    @staticmethod
    def _label_array(y: Any) -> np.ndarray:
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        return arr

    def encode_targets(self, y: Any, field: str = "y") -> np.ndarray:
        """Labels or values -> what the loss expects (see the head)."""
        return self.head.encode_targets(self._label_array(y), self.labels, self.dtype, field)

    # ----------------------------------------------------------------- prediction

    def predict(self, x: Any, field: str = "X") -> np.ndarray:
        """Outputs for raw inputs: class probabilities for classifiers (one column for a
        sigmoid unit), scores for hinge, values for regression."""
        data = self.encode_inputs(x, field)
        outs = [
            self.head.predictions(self.infer(data[i : i + PREDICT_BATCH]))
            for i in range(0, len(data), PREDICT_BATCH)
        ]
        if not outs:
            return np.zeros((0, self.output_dim), dtype=self.dtype)
        # One chunk (every request of up to PREDICT_BATCH rows) is already a fresh array.
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    @property
    def classes(self) -> list[Any]:
        """Labels of a classifier's class columns, in column order, JSON-safe ([] for
        regression; indices when no labels were fitted)."""
        n = self.head.n_columns
        if self.labels is not None and len(self.labels.classes):
            known: list[Any] = self.labels.classes.tolist()
        else:
            known = list(range(n))
        return known[:n]

    def decode(self, predictions: np.ndarray, threshold: float | None = None) -> Decoded:
        """`predict` outputs read as probabilities, labels and values (see the head);
        `threshold` moves a binary classifier's cut."""
        return self.head.decode(predictions, self.classes, threshold)

    def predict_labels(self, x: Any, field: str = "X") -> np.ndarray:
        return self.labels_from_outputs(self.predict(x, field))

    def labels_from_outputs(self, out: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Class labels from `predict` outputs (a bool matrix for multi-label models)."""
        if not self.is_classifier or self.labels is None:
            raise DataError("model", "is not a fitted classifier")
        chosen = self.head.decide(out, len(self.classes), threshold)
        return chosen if self.head.multilabel else self.labels.decode(chosen)
