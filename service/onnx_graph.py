"""nn_core's inference computations written as ONNX nodes, one function per kind of part.

Each formula is the one nn_core computes, op for op where ONNX allows (sigmoid through tanh,
GELU's tanh form, ELU as a select over exp(min(z, 0)) - 1, batch norm with nn_core's folded
scale), with constants in the model's dtype, so onnxruntime answers what `model.predict`
does to float rounding. A part ONNX cannot express raises `invalid(field)` naming it: the
route answers 422 instead of producing a file that computes something else.

Kept out of nn_core (which imports nothing but NumPy); service/onnx_export.py assembles the
file from these pieces.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, helper, numpy_helper

from nn_core.activations import _GELU_C, _SELU_ALPHA, _SELU_SCALE, ELU, Activation, LeakyReLU
from nn_core.heads import Head
from nn_core.layers import ActivationLayer, BatchNorm, Dense, Dropout, Layer, Maxout
from nn_core.preprocessing import MinMax, Scale, Standardize
from nn_core.transforms import Transform
from service.errors import invalid


class GraphBuilder:
    """Collects nodes and constants, naming every intermediate value uniquely."""

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._count = 0

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value: Any, stem: str = "const", dtype: Any = None) -> str:
        """A constant (an initializer) in the model's dtype unless `dtype` is given."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self._name(stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs: Any) -> str:
        """Append one node and return the name of its output."""
        out = output if output is not None else self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def scalar(self, op_type: str, x: str, value: float) -> str:
        """x <op> value, the value as a scalar of the model's dtype (as NumPy casts it)."""
        return self.op(op_type, x, self.const(value))


# ----------------------------------------------------------------------------- activations


def _sigmoid(g: GraphBuilder, z: str) -> str:
    """nn_core's overflow-free form: (tanh(z / 2) + 1) / 2."""
    t = g.op("Tanh", g.scalar("Mul", z, 0.5))
    return g.scalar("Add", g.scalar("Mul", t, 0.5), 0.5)


def _exp_below_zero(g: GraphBuilder, z: str, alpha: float) -> str:
    """alpha * (e^min(z, 0) - 1): ELU's negative side (ONNX has no expm1; the difference is
    below float32 rounding in absolute terms)."""
    e = g.op("Exp", g.op("Min", z, g.const(0.0)))
    return g.scalar("Mul", g.scalar("Sub", e, 1.0), alpha)


def _where_non_positive(g: GraphBuilder, z: str, negative: str) -> str:
    return g.op("Where", g.op("LessOrEqual", z, g.const(0.0)), negative, z)


def _gelu(g: GraphBuilder, z: str) -> str:
    """0.5 * z * (1 + tanh(sqrt(2/pi) * (z + 0.044715 z^3))), the tanh form nn_core uses."""
    cube = g.op("Mul", z, g.op("Mul", z, z))
    inner = g.op("Tanh", g.scalar("Mul", g.op("Add", z, g.scalar("Mul", cube, 0.044715)), _GELU_C))
    return g.op("Mul", g.scalar("Mul", g.scalar("Add", inner, 1.0), 0.5), z)


def _softplus(g: GraphBuilder, z: str) -> str:
    """max(z, 0) + log(1 + e^-|z|), finite for every z as in nn_core."""
    tail = g.op("Log", g.scalar("Add", g.op("Exp", g.op("Neg", g.op("Abs", z))), 1.0))
    return g.op("Add", g.op("Relu", z), tail)


def activation(g: GraphBuilder, act: Activation, z: str, field: str) -> str:
    """f(z) for each activation of nn_core/activations.py."""
    name = act.name
    if name == "identity":
        return z
    if name == "step":
        return g.op("Cast", g.op("Greater", z, g.const(0.0)), to=_onnx_type(g.dtype))
    if name == "sigmoid":
        return _sigmoid(g, z)
    if name == "tanh":
        return g.op("Tanh", z)
    if name == "relu":
        return g.op("Relu", z)
    if isinstance(act, LeakyReLU):  # max(z, alpha z), as nn_core writes it for 0 <= alpha <= 1
        return g.op("Max", z, g.scalar("Mul", z, act.alpha))
    if isinstance(act, ELU):
        return _where_non_positive(g, z, _exp_below_zero(g, z, act.alpha))
    if name == "selu":
        return g.scalar(
            "Mul", _where_non_positive(g, z, _exp_below_zero(g, z, _SELU_ALPHA)), _SELU_SCALE
        )
    if name == "softplus":
        return _softplus(g, z)
    if name == "gelu":
        return _gelu(g, z)
    if name == "softmax":
        return g.op("Softmax", z, axis=1)
    raise invalid(field, f"activation {name!r} cannot be exported to ONNX")


# ----------------------------------------------------------------------------- layers


def _affine(g: GraphBuilder, x: str, weights: np.ndarray, bias: np.ndarray | None) -> str:
    z = g.op("MatMul", x, g.const(weights, "W"))
    return z if bias is None else g.op("Add", z, g.const(bias, "b"))


def layer(g: GraphBuilder, part: Layer, x: str, field: str) -> str:
    """One layer in inference mode: dropout is the identity, batch norm uses running stats."""
    if isinstance(part, Dense):
        z = _affine(g, x, part.params["W"], part.params["b"] if part.use_bias else None)
        return activation(g, part.activation, z, f"{field}.activation")
    if isinstance(part, Maxout):
        z = _affine(g, x, part.params["W"], part.params["b"])
        shape = g.const([-1, part.units, part.pieces], "shape", np.int64)
        return g.op("ReduceMax", g.op("Reshape", z, shape), axes=[2], keepdims=0)
    if isinstance(part, BatchNorm):
        # nn_core: (x - mean) * (inv_std * gamma) + beta, with the same float32 folding.
        inv_std = 1.0 / np.sqrt(part.buffers["running_var"] + part.eps)
        scale = inv_std * part.params["gamma"]
        centred = g.op("Sub", x, g.const(part.buffers["running_mean"], "mean"))
        return g.op(
            "Add",
            g.op("Mul", centred, g.const(scale, "scale")),
            g.const(part.params["beta"], "beta"),
        )
    if isinstance(part, ActivationLayer):
        return activation(g, part.activation, x, f"{field}.activation")
    if isinstance(part, Dropout):
        return x
    raise invalid(field, f"a {part.type!r} layer cannot be exported to ONNX")


# ----------------------------------------------------------------------------- transforms


def transform(g: GraphBuilder, part: Transform, x: str, field: str) -> str:
    """One fitted numeric transform; raw-input ones (text features) cannot be expressed."""
    if isinstance(part, Scale):
        out = g.scalar("Mul", x, part.factor)
        return g.scalar("Add", out, part.offset) if part.offset else out
    if isinstance(part, Standardize | MinMax):
        shifted = g.op("Sub", x, g.const(part.shift.astype(g.dtype), "shift"))
        return g.op("Div", shifted, g.const(part.scale.astype(g.dtype), "scale"))
    why = "reads raw input in Python" if part.raw_input else "has no ONNX form"
    raise invalid(
        field,
        f"the {part.name!r} transform {why}, so this model cannot be exported to ONNX; "
        "download it with format=npz",
    )


# ----------------------------------------------------------------------------- heads


def _columns(g: GraphBuilder, x: str, stop: int) -> str:
    """x[:, :stop]."""
    starts, ends = g.const([0], "start", np.int64), g.const([stop], "end", np.int64)
    return g.op("Slice", x, starts, ends, g.const([1], "axis", np.int64))


def head(g: GraphBuilder, part: Head, out: str, n_classes: int, output: str) -> str:
    """What `:predict` answers from the network output: softmax or sigmoid probabilities
    (the head applies a fused loss's activation), hinge scores, or regression values."""
    kind = part.kind
    if kind == "regression":
        result = out
    elif kind == "softmax":
        result = _columns(g, g.op("Softmax", out, axis=1), n_classes)
    elif kind == "sigmoid":
        p = _sigmoid(g, out)
        both = g.op("Concat", g.op("Sub", g.const(1.0), p), p, axis=1)
        result = _columns(g, both, n_classes)
    elif kind == "multilabel":
        result = _columns(g, _sigmoid(g, out), n_classes)
    elif kind == "hinge":
        result = _columns(g, out, 1)
    else:
        raise invalid("loss", f"a {kind!r} output cannot be exported to ONNX")
    cast = g.dtype != np.float32
    return (
        g.op("Cast", result, output=output, to=TensorProto.FLOAT)
        if cast
        else g.op("Identity", result, output=output)
    )


def _onnx_type(dtype: np.dtype[Any]) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
