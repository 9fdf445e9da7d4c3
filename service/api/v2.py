"""Open Inference Protocol (KServe V2) over REST: health, server and model metadata, infer.

Every model has one input tensor named "input": FP32/FP64 (integer types accepted too) of
shape [batch, input_dim] (trailing dimensions may split input_dim, e.g. [batch, 28, 28]),
or BYTES of shape [batch] for text models. Outputs: "probabilities" (FP32 [batch, classes],
class order in its `classes` parameter) and "label" for classifiers, "scores" for hinge
models, "predictions" for regression. Health routes need no key; model routes do.
Errors keep the service's JSON error shape.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request

from nn_core.heads import Decoded
from service import predictor
from service.api.errors import ERROR_RESPONSES, error_responses
from service.api.health import check_ready
from service.api.predict import PREDICT_RESPONSES
from service.auth import PrincipalDep
from service.db import Database
from service.deps import DatabaseDep, ModelCacheDep
from service.errors import invalid
from service.rate_limit import PredictPrincipalDep
from service.registry import reads
from service.registry.cache import ModelCache
from service.schemas.v2 import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    ModelReady,
    RequestInput,
    ResponseOutput,
    ServerLive,
    ServerMetadata,
    ServerReady,
    TensorMetadata,
)
from service.serving import Served, VersionTarget, serve
from service.version import NAME, release

public_router = APIRouter(prefix="/v2", tags=["open inference (v2)"])
router = APIRouter(prefix="/v2/models", tags=["open inference (v2)"])

PLATFORM = "nn-core"
INPUT_NAME = "input"
VersionRef = Annotated[str, Path(max_length=64, description="Version number or alias")]

#: Inclusive value ranges of the integer datatypes.
INT_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
FLOAT_MAX = {"FP16": float(np.finfo(np.float16).max), "FP32": float(np.finfo(np.float32).max)}
NUMERIC = frozenset({*INT_RANGES, "FP16", "FP32", "FP64"})


# ----------------------------------------------------------------------------- health


@public_router.get("", response_model=ServerMetadata)
def server_metadata() -> ServerMetadata:
    """Server name and version (no key needed)."""
    return ServerMetadata(name=NAME, version=release(), extensions=[])


@public_router.get("/health/live", response_model=ServerLive)
def live() -> ServerLive:
    """The server is up (no key needed)."""
    return ServerLive(live=True)


@public_router.get("/health/ready", response_model=ServerReady, responses=error_responses(503))
def ready(request: Request, database: DatabaseDep) -> ServerReady:
    """Started and the database answers (no key needed); 503 otherwise."""
    check_ready(request, database)
    return ServerReady(ready=True)


# ----------------------------------------------------------------------------- metadata

_MODEL_RESPONSES = {**ERROR_RESPONSES, **error_responses(503)}


@router.get("/{name}", response_model=ModelMetadata, responses=_MODEL_RESPONSES)
async def model_metadata(
    name: str, principal: PrincipalDep, database: DatabaseDep, cache: ModelCacheDep
) -> ModelMetadata:
    """Versions and the input/output tensors of the latest version."""
    return await _metadata(database, cache, principal.owner, name, None)


@router.get("/{name}/versions/{version}", response_model=ModelMetadata, responses=_MODEL_RESPONSES)
async def version_metadata(
    name: str,
    version: VersionRef,
    principal: PrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> ModelMetadata:
    return await _metadata(database, cache, principal.owner, name, version)


async def _metadata(
    database: Database, cache: ModelCache, owner: str, name: str, ref: str | None
) -> ModelMetadata:
    served = await serve(database, cache, owner, VersionTarget(name, ref))
    versions = await database.read(lambda reader: reads.version_numbers(reader, owner, name))
    return ModelMetadata(
        name=served.name,
        versions=[str(v) for v in versions],
        platform=PLATFORM,
        inputs=[_input_metadata(served)],
        outputs=_output_metadata(served),
    )


def _input_metadata(served: Served) -> TensorMetadata:
    model = served.model
    if model.raw_input:
        return TensorMetadata(name=INPUT_NAME, datatype="BYTES", shape=[-1])
    dtype = "FP64" if model.dtype == np.float64 else "FP32"
    return TensorMetadata(name=INPUT_NAME, datatype=dtype, shape=[-1, int(model.input_dim or 0)])


def _output_metadata(served: Served) -> list[TensorMetadata]:
    model = served.model
    head = model.head
    if not head.is_classifier:
        return [TensorMetadata(name="predictions", datatype="FP32", shape=[-1, model.output_dim])]
    classes = model.classes
    label_type = _label_datatype(classes)
    label = TensorMetadata(name="label", datatype=label_type, shape=[-1])
    if head.multilabel:
        return [TensorMetadata(name="probabilities", datatype="FP32", shape=[-1, len(classes)])]
    if head.has_probabilities:
        return [
            TensorMetadata(name="probabilities", datatype="FP32", shape=[-1, len(classes)]),
            label,
        ]
    return [TensorMetadata(name="scores", datatype="FP32", shape=[-1, 1]), label]


@router.get("/{name}/ready", response_model=ModelReady, responses=_MODEL_RESPONSES)
async def model_ready(
    name: str, principal: PrincipalDep, database: DatabaseDep, cache: ModelCacheDep
) -> ModelReady:
    """200 when the latest version is loaded (loading it now if needed); 404 if none."""
    served = await serve(database, cache, principal.owner, VersionTarget(name))
    return ModelReady(name=served.name, ready=True)


@router.get(
    "/{name}/versions/{version}/ready", response_model=ModelReady, responses=_MODEL_RESPONSES
)
async def version_ready(
    name: str,
    version: VersionRef,
    principal: PrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> ModelReady:
    served = await serve(database, cache, principal.owner, VersionTarget(name, version))
    return ModelReady(name=served.name, ready=True)


# ----------------------------------------------------------------------------- infer


@router.post("/{name}/infer", response_model=InferResponse, responses=PREDICT_RESPONSES)
async def infer(
    name: str,
    body: InferRequest,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> InferResponse:
    """Inference with the latest version (see the module docs for tensors and datatypes)."""
    return await _infer(database, cache, principal.owner, name, None, body)


@router.post(
    "/{name}/versions/{version}/infer", response_model=InferResponse, responses=PREDICT_RESPONSES
)
async def infer_version(
    name: str,
    version: VersionRef,
    body: InferRequest,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
) -> InferResponse:
    return await _infer(database, cache, principal.owner, name, version, body)


async def _infer(
    database: Database,
    cache: ModelCache,
    owner: str,
    name: str,
    ref: str | None,
    body: InferRequest,
) -> InferResponse:
    served = await serve(database, cache, owner, VersionTarget(name, ref))
    shape = body.inputs[0].shape if body.inputs else []
    rows = shape[0] if shape else 1
    return await predictor.compute(served.model, rows, lambda: _infer_served(served, body))


def _infer_served(served: Served, body: InferRequest) -> InferResponse:
    wanted = _requested_outputs(served, body)
    if len(body.inputs) != 1:
        raise invalid("inputs", f"this model takes exactly one input named {INPUT_NAME!r}")
    tensor = body.inputs[0]
    if tensor.name != INPUT_NAME:
        raise invalid("inputs[0].name", f"unknown input {tensor.name!r}; expected {INPUT_NAME!r}")
    threshold = predictor.threshold_for(
        served.model, _requested_threshold(body), served.threshold, "parameters.threshold"
    )
    x = _decode_input(served, tensor)
    decoded = predictor.run(served.model, x, "inputs[0].data", threshold)
    encoded = [o for o in _encode_outputs(decoded) if wanted is None or o.name in wanted]
    shown = predictor.shown_threshold(served.model, threshold)
    return InferResponse(
        model_name=served.name,
        model_version=str(served.version),
        id=body.id,
        parameters=None if shown is None else {"threshold": shown},
        outputs=encoded,
    )


def _requested_threshold(body: InferRequest) -> float | None:
    """The request parameter `threshold`: a probability in [0, 1] for binary classifiers."""
    value = (body.parameters or {}).get("threshold")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise invalid("parameters.threshold", "must be a number between 0 and 1")
    return float(value)


def _requested_outputs(served: Served, body: InferRequest) -> set[str] | None:
    if body.outputs is None:
        return None
    known = {t.name for t in _output_metadata(served)}
    for i, output in enumerate(body.outputs):
        if output.name not in known:
            raise invalid(
                f"outputs[{i}].name",
                f"unknown output {output.name!r}; this model has {', '.join(sorted(known))}",
            )
    return {o.name for o in body.outputs}


def _decode_input(served: Served, tensor: RequestInput) -> np.ndarray | list[str]:
    """Check datatype, shape and data against each other and the model; reshape flat data."""
    model = served.model
    count = math.prod(tensor.shape)
    if model.raw_input:
        if tensor.datatype != "BYTES":
            raise invalid("inputs[0].datatype", "this text model takes BYTES (strings)")
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise invalid("inputs[0].shape", "text input must have shape [batch] or [batch, 1]")
        texts = _flatten(tensor.data, "inputs[0].data")
        _check_count(len(texts), count, tensor.shape)
        return predictor.text_input(texts, "inputs[0].data")
    if tensor.datatype not in NUMERIC:
        raise invalid(
            "inputs[0].datatype",
            f"this model takes numbers (FP32, FP64 or an integer type), not {tensor.datatype}",
        )
    try:
        flat = np.asarray(tensor.data, dtype=np.float64).ravel()
    except (ValueError, TypeError):
        raise invalid(
            "inputs[0].data", f"must be {tensor.datatype} numbers in a flat or regular nested list"
        ) from None
    _check_count(flat.size, count, tensor.shape)
    _check_values(flat, tensor.datatype)
    width = int(model.input_dim or 0)
    if len(tensor.shape) < 2 and width != 1:
        raise invalid("inputs[0].shape", f"expected [batch, {width}], got {tensor.shape}")
    per_row = math.prod(tensor.shape[1:]) if len(tensor.shape) > 1 else 1
    if per_row != width:
        raise invalid(
            "inputs[0].shape",
            f"expected [batch, {width}] (or trailing dims multiplying to {width}), "
            f"got {tensor.shape}",
        )
    return predictor.numeric_input(model, flat.reshape(tensor.shape[0], width), "inputs[0].data")


def _flatten(data: list[Any], field: str) -> list[Any]:
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            if len(stack) > 8:
                raise invalid(field, "is nested too deeply")
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def _check_count(got: int, need: int, shape: list[int]) -> None:
    if got != need:
        raise invalid("inputs[0].data", f"has {got} values but shape {shape} needs {need}")


def _check_values(flat: np.ndarray, datatype: str) -> None:
    bad = ~np.isfinite(flat)
    if bad.any():
        raise invalid(f"inputs[0].data[{int(np.argmax(bad))}]", "NaN and Infinity are not allowed")
    if datatype in INT_RANGES:
        low, high = INT_RANGES[datatype]
        wrong = (flat != np.round(flat)) | (flat < low) | (flat > high)
        if wrong.any():
            raise invalid(
                f"inputs[0].data[{int(np.argmax(wrong))}]",
                f"{datatype} values must be integers in {low}..{high}",
            )
    elif datatype in FLOAT_MAX:
        over = np.abs(flat) > FLOAT_MAX[datatype]
        if over.any():
            raise invalid(f"inputs[0].data[{int(np.argmax(over))}]", f"out of {datatype} range")


def _encode_outputs(decoded: Decoded) -> list[ResponseOutput]:
    if decoded.labels is None:
        assert decoded.values is not None
        return [_tensor("predictions", decoded.values)]
    encoded: list[ResponseOutput] = []
    if decoded.probabilities is None:
        assert decoded.values is not None
        encoded.append(_tensor("scores", decoded.values))
    else:
        probabilities = _tensor("probabilities", decoded.probabilities)
        probabilities.parameters = {"classes": json.dumps(decoded.classes)}
        encoded.append(probabilities)
    if decoded.multilabel:  # a list of labels per row: no tensor holds that
        return encoded
    encoded.append(
        ResponseOutput(
            name="label",
            shape=[len(decoded.labels)],
            datatype=_label_datatype(decoded.classes),
            data=list(decoded.labels),
        )
    )
    return encoded


def _tensor(name: str, values: np.ndarray) -> ResponseOutput:
    arr = np.asarray(values, dtype=np.float32)
    return ResponseOutput(
        name=name, shape=list(arr.shape), datatype="FP32", data=arr.ravel().tolist()
    )


def _label_datatype(classes: list[Any]) -> str:
    return "INT64" if all(isinstance(c, int) for c in classes) else "BYTES"
