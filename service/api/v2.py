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
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Request

from service import model_store, predictor
from service.api.models import get_cache
from service.api.predict import PREDICT_RESPONSES
from service.auth import PrincipalDep
from service.db import Database
from service.deps import DatabaseDep, SessionDep
from service.errors import ERROR_RESPONSES, ServiceUnavailable, error_responses
from service.model_store import ModelCache, Served
from service.predictor import Outputs, invalid
from service.rate_limit import PredictPrincipalDep
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

public_router = APIRouter(prefix="/v2", tags=["open inference (v2)"])
router = APIRouter(prefix="/v2/models", tags=["open inference (v2)"])

PLATFORM = "nn-core"
INPUT_NAME = "input"
CacheDep = Annotated[ModelCache, Depends(get_cache)]
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
    try:
        release = version("nn-service")
    except PackageNotFoundError:  # a checkout that is not installed
        release = "0.0.0"
    return ServerMetadata(name="nn-service", version=release, extensions=[])


@public_router.get("/health/live", response_model=ServerLive)
def live() -> ServerLive:
    """The server is up (no key needed)."""
    return ServerLive(live=True)


@public_router.get("/health/ready", response_model=ServerReady, responses=error_responses(503))
def ready(request: Request, database: DatabaseDep) -> ServerReady:
    """Started and the database answers (no key needed); 503 otherwise."""
    if not getattr(request.app.state, "started", False):
        raise ServiceUnavailable("starting up", type="not_ready")
    try:
        database.ping()
    except Exception as exc:
        raise ServiceUnavailable("database unreachable", type="not_ready") from exc
    return ServerReady(ready=True)


# ----------------------------------------------------------------------------- metadata

_MODEL_RESPONSES = {**ERROR_RESPONSES, **error_responses(503)}


@router.get("/{name}", response_model=ModelMetadata, responses=_MODEL_RESPONSES)
def model_metadata(
    name: str, principal: PrincipalDep, session: SessionDep, cache: CacheDep
) -> ModelMetadata:
    """Versions and the input/output tensors of the latest version."""
    return _metadata(session, cache, principal.owner, name, None)


@router.get("/{name}/versions/{version}", response_model=ModelMetadata, responses=_MODEL_RESPONSES)
def version_metadata(
    name: str, version: VersionRef, principal: PrincipalDep, session: SessionDep, cache: CacheDep
) -> ModelMetadata:
    return _metadata(session, cache, principal.owner, name, version)


def _metadata(
    session: SessionDep, cache: ModelCache, owner: str, name: str, ref: str | None
) -> ModelMetadata:
    served = model_store.load_served(session, cache, owner, name, ref)
    record = model_store.get_model(session, owner, name)
    versions = [str(v.version) for v in model_store.versions_of(session, record)]
    return ModelMetadata(
        name=served.name,
        versions=versions,
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
    kind = predictor.output_kind(model)
    if kind == predictor.REGRESSION:
        return [TensorMetadata(name="predictions", datatype="FP32", shape=[-1, model.output_dim])]
    classes = predictor.class_labels(model)
    label_type = _label_datatype(classes)
    if kind == predictor.HINGE:
        return [
            TensorMetadata(name="scores", datatype="FP32", shape=[-1, 1]),
            TensorMetadata(name="label", datatype=label_type, shape=[-1]),
        ]
    outputs = [TensorMetadata(name="probabilities", datatype="FP32", shape=[-1, len(classes)])]
    if kind != predictor.MULTILABEL:
        outputs.append(TensorMetadata(name="label", datatype=label_type, shape=[-1]))
    return outputs


@router.get("/{name}/ready", response_model=ModelReady, responses=_MODEL_RESPONSES)
def model_ready(
    name: str, principal: PrincipalDep, session: SessionDep, cache: CacheDep
) -> ModelReady:
    """200 when the latest version is loaded (loading it now if needed); 404 if none."""
    served = model_store.load_served(session, cache, principal.owner, name, None)
    return ModelReady(name=served.name, ready=True)


@router.get(
    "/{name}/versions/{version}/ready", response_model=ModelReady, responses=_MODEL_RESPONSES
)
def version_ready(
    name: str, version: VersionRef, principal: PrincipalDep, session: SessionDep, cache: CacheDep
) -> ModelReady:
    served = model_store.load_served(session, cache, principal.owner, name, version)
    return ModelReady(name=served.name, ready=True)


# ----------------------------------------------------------------------------- infer


@router.post("/{name}/infer", response_model=InferResponse, responses=PREDICT_RESPONSES)
async def infer(
    name: str,
    body: InferRequest,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: CacheDep,
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
    cache: CacheDep,
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
    served = await model_store.serve(database, cache, owner, name, ref)
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
    x = _decode_input(served, tensor)
    outputs = predictor.run(served.model, x, "inputs[0].data")
    encoded = [o for o in _encode_outputs(outputs) if wanted is None or o.name in wanted]
    return InferResponse(
        model_name=served.name, model_version=str(served.version), id=body.id, outputs=encoded
    )


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


def _encode_outputs(outputs: Outputs) -> list[ResponseOutput]:
    if outputs.kind == predictor.REGRESSION:
        assert outputs.values is not None
        return [_tensor("predictions", outputs.values)]
    assert outputs.labels is not None
    encoded: list[ResponseOutput] = []
    if outputs.kind == predictor.HINGE:
        assert outputs.values is not None
        encoded.append(_tensor("scores", outputs.values))
    else:
        assert outputs.probabilities is not None
        probabilities = _tensor("probabilities", outputs.probabilities)
        probabilities.parameters = {"classes": json.dumps(outputs.classes)}
        encoded.append(probabilities)
    if outputs.kind != predictor.MULTILABEL:
        encoded.append(
            ResponseOutput(
                name="label",
                shape=[len(outputs.labels)],
                datatype=_label_datatype(outputs.classes),
                data=list(outputs.labels),
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
