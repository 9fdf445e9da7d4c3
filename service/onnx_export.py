"""A model version as an ONNX file, for runtimes other than this service (onnxruntime, ...).

The graph is the whole prediction path of `:predict`: the fitted numeric transforms, every
layer in inference mode and the output head, so the file's output equals the API's
probabilities (classifiers), scores (hinge) or values (regression). Its one input is
"input", float32 [batch, input_dim] with a dynamic batch; a float64 model computes in float64
inside and answers float32. Class labels, the model's name and version and the decision
threshold travel in metadata_props, since ONNX outputs carry numbers only.

What ONNX cannot express is refused with a 422 naming the part (a text model's
`preprocess[0]`): exporting the network alone would give a file that silently expects a
different input than the model does.

Opset 17 with IR version 8 loads in onnxruntime 1.18 and later.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from nn_core.model import Model as NNModel
from service import onnx_graph
from service.version import NAME, release

OPSET = 17
IR_VERSION = 8
INPUT = "input"
#: The output's name per head kind (anything else: "probabilities").
OUTPUT_NAMES = {"regression": "values", "hinge": "scores"}
MEDIA_TYPE = "application/octet-stream"


def output_name(model: NNModel) -> str:
    return OUTPUT_NAMES.get(model.head.kind, "probabilities")


def export_onnx(model: NNModel, name: str, version: int, threshold: float | None = None) -> bytes:
    """The serialized ONNX model of `model` (version `version` of `name`); raises a 422
    naming the first part that has no ONNX form."""
    proto = build_onnx(model, name, version, threshold)
    return proto.SerializeToString()


def build_onnx(
    model: NNModel, name: str, version: int, threshold: float | None = None
) -> onnx.ModelProto:
    """The checked ModelProto (see `export_onnx`)."""
    graph = onnx_graph.GraphBuilder(model.dtype)
    x = INPUT
    if model.dtype != np.float32:
        x = graph.op("Cast", x, to=helper.np_dtype_to_tensor_dtype(model.dtype))
    for i, part in enumerate(model.preprocess):
        x = onnx_graph.transform(graph, part, x, f"preprocess[{i}]")
    for i, layer in enumerate(model.layers):
        x = onnx_graph.layer(graph, layer, x, f"layers[{i}]")
    classes = model.classes
    output = output_name(model)
    onnx_graph.head(graph, model.head, x, len(classes), output)
    width = _output_width(model, len(classes))
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            f"{name}-v{version}",
            [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", model.input_dim])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name=NAME,
        producer_version=release(),
        doc_string=f"{name} version {version}, exported by {NAME}: {output} for each input row",
    )
    helper.set_model_props(proto, _metadata(model, name, version, threshold, output))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _output_width(model: NNModel, n_classes: int) -> int:
    kind = model.head.kind
    if kind == "regression":
        return model.output_dim
    if kind == "hinge":
        return 1
    return n_classes


def _metadata(
    model: NNModel, name: str, version: int, threshold: float | None, output: str
) -> dict[str, str]:
    props: dict[str, Any] = {
        "model": name,
        "version": str(version),
        "head": model.head.kind,
        "output": output,
        "classes": json.dumps(model.classes),
    }
    if threshold is not None and model.head.binary:
        props["threshold"] = repr(float(threshold))
    return props
