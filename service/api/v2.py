"""Open Inference Protocol (KServe V2) over REST: health, server and model metadata, infer.

Every model has one input tensor named "input": any numeric datatype (BOOL, INT8..UINT64,
FP16..FP64, converted to the model's float input) of shape [batch, input_dim] (trailing
dimensions may split input_dim, e.g. [batch, 28, 28]), or BYTES of shape [batch] for text
models. Outputs: "probabilities" (FP32 [batch, classes], class order in its `classes`
parameter) and "label" for classifiers, "scores" for hinge models, "predictions" for
regression. Tensors travel as JSON `data` or in the binary tensor data extension
(service/api/v2_binary.py), as tritonclient sends them by default; the infer body is read
raw, so a request without a Content-Type works too. Health routes need no key; model routes
do. Errors have the protocol's shape, {"error": "<message naming the field>"}
(service/api/errors.py answers them).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from nn_core.heads import Decoded
from service import predictor, shadow
from service.api import v2_binary
from service.api.bodies import body_error
from service.api.errors import error_responses
from service.api.health import check_ready
from service.auth import PrincipalDep
from service.db import Database
from service.deps import DatabaseDep, ModelCacheDep, SettingsDep
from service.errors import invalid
from service.observability import Metrics
from service.rate_limit import PredictPrincipalDep
from service.registry import reads
from service.registry.cache import ModelCache
from service.schemas.v2 import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    ModelReady,
    ProtocolError,
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
NUMERIC = frozenset({*INT_RANGES, "BOOL", "FP16", "FP32", "FP64"})


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for errors in the protocol's shape."""
    return error_responses(*statuses, model=ProtocolError)


# ----------------------------------------------------------------------------- health


@public_router.get("", response_model=ServerMetadata)
def server_metadata() -> ServerMetadata:
    """Server name and version (no key needed)."""
    return ServerMetadata(
        name=NAME, version=release(), extensions=["binary_tensor_data", "parameters"]
    )


@public_router.get("/health/live", response_model=ServerLive)
def live() -> ServerLive:
    """The server is up (no key needed)."""
    return ServerLive(live=True)


@public_router.get("/health/ready", response_model=ServerReady, responses=_errors(503))
def ready(request: Request, database: DatabaseDep) -> ServerReady:
    """Started and the database answers (no key needed); 503 otherwise."""
    check_ready(request, database)
    return ServerReady(ready=True)


# ----------------------------------------------------------------------------- metadata

_MODEL_RESPONSES = _errors(400, 401, 404, 409, 413, 422, 503)


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

_INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with binary outputs a JSON header of "
        "Inference-Header-Content-Length bytes followed by the tensors' bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **_errors(400, 401, 404, 409, 413, 415, 422, 429, 503),
}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` written in place (OpenAPI has no `$defs`)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


#: The body is read raw (any Content-Type, binary data after the JSON); this documents it.
_INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "JSON; with binary inputs, a JSON header of Inference-Header-Content-"
        "Length bytes followed by the tensors' bytes",
        "content": {"application/json": {"schema": _inline(InferRequest.model_json_schema())}},
    }
}


@router.post(
    "/{name}/infer",
    response_model=InferResponse,
    responses=_INFER_RESPONSES,
    openapi_extra=_INFER_BODY,
)
async def infer(
    name: str,
    request: Request,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
    settings: SettingsDep,
) -> Response:
    """Inference with the latest version (see the module docs for tensors and datatypes)."""
    body, binary = await _read(request, settings.max_body_bytes)
    metrics = request.app.state.metrics
    return await _infer(database, cache, metrics, principal.owner, name, None, body, binary)


@router.post(
    "/{name}/versions/{version}/infer",
    response_model=InferResponse,
    responses=_INFER_RESPONSES,
    openapi_extra=_INFER_BODY,
)
async def infer_version(
    name: str,
    version: VersionRef,
    request: Request,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    cache: ModelCacheDep,
    settings: SettingsDep,
) -> Response:
    body, binary = await _read(request, settings.max_body_bytes)
    metrics = request.app.state.metrics
    return await _infer(database, cache, metrics, principal.owner, name, version, body, binary)


async def _read(request: Request, limit: int) -> tuple[InferRequest, list[bytes | None]]:
    """The request and each input's binary data, from the raw body whatever its Content-Type."""
    raw = v2_binary.decompress(await request.body(), request.headers.get("content-encoding"), limit)
    header, data = v2_binary.split(raw, request.headers.get(v2_binary.HEADER))
    try:
        document = json.loads(header)
    except ValueError as exc:  # includes UnicodeDecodeError
        announced = request.headers.get(v2_binary.HEADER)
        where = "" if announced is None else f" (its first {v2_binary.HEADER}: {announced} bytes)"
        raise invalid("body", f"is not valid JSON{where}: {exc}") from None
    except RecursionError:
        raise invalid("body", "is nested too deeply") from None
    try:
        body = InferRequest.model_validate(document)
    except ValidationError as exc:
        raise body_error(exc) from None
    sizes = [
        v2_binary.binary_size(tensor.parameters, f"inputs[{i}]")
        for i, tensor in enumerate(body.inputs)
    ]
    return body, v2_binary.slice_tensors(sizes, data)


async def _infer(
    database: Database,
    cache: ModelCache,
    metrics: Metrics,
    owner: str,
    name: str,
    ref: str | None,
    body: InferRequest,
    binary: list[bytes | None],
) -> Response:
    served = await serve(database, cache, owner, VersionTarget(name, ref))
    shape = body.inputs[0].shape if body.inputs else []
    rows = shape[0] if shape else 1
    seen: list[tuple[Any, Decoded]] = []
    response = await predictor.compute(
        served.model, rows, lambda: _infer_served(served, body, binary[0], seen)
    )
    if served.shadow is not None and seen:  # after the answer is sent; never in it
        x, decoded = seen[0]
        threshold = _requested_threshold(body)
        response.background = BackgroundTask(
            shadow.mirror, database, cache, metrics, served, x, decoded, threshold
        )
    return response


def _infer_served(
    served: Served, body: InferRequest, binary: bytes | None, seen: list[tuple[Any, Decoded]]
) -> Response:
    """The answer; (input, decoded output) go to `seen` for an alias's shadow run."""
    wanted = _requested_outputs(served, body)
    if len(body.inputs) != 1:
        raise invalid("inputs", f"this model takes exactly one input named {INPUT_NAME!r}")
    tensor = body.inputs[0]
    if tensor.name != INPUT_NAME:
        raise invalid("inputs[0].name", f"unknown input {tensor.name!r}; expected {INPUT_NAME!r}")
    _refuse_extensions(tensor.parameters, "inputs[0]")
    threshold = predictor.threshold_for(
        served.model, _requested_threshold(body), served.threshold, "parameters.threshold"
    )
    x = _decode_input(served, tensor, binary)
    decoded = predictor.run(served.model, x, "inputs[0].data", threshold)
    seen.append((x, decoded))
    encoded = [o for o in _encode_outputs(decoded) if wanted is None or o.name in wanted]
    shown = predictor.shown_threshold(served.model, threshold)
    response = InferResponse(
        model_name=served.name,
        model_version=str(served.version),
        id=body.id,
        parameters=None if shown is None else {"threshold": shown},
        outputs=encoded,
    )
    return _answer(response, _binary_outputs(body))


def _answer(response: InferResponse, binary: set[str] | bool) -> Response:
    """JSON, or a JSON header and the bytes of the outputs asked for as binary data (which
    carry `binary_data_size` in their parameters instead of `data`)."""
    header = response.model_dump(mode="json")
    data: list[bytes] = []
    for output in header["outputs"]:
        if binary is True or (binary and output["name"] in binary):
            data.append(v2_binary.tensor_bytes(output["datatype"], output.pop("data")))
            output["parameters"] = {**(output["parameters"] or {}), v2_binary.SIZE: len(data[-1])}
    if not data:
        return JSONResponse(header)
    content, length = v2_binary.pack(header, data)
    return Response(
        content, media_type="application/octet-stream", headers={v2_binary.HEADER: str(length)}
    )


def _binary_outputs(body: InferRequest) -> set[str] | bool:
    """The outputs to answer as binary data: each requested output's `binary_data`, else the
    request's `binary_data_output` (True: all of them)."""
    default = _flag(body.parameters, "binary_data_output", "parameters")
    if body.outputs is None:
        return default
    return {
        output.name
        for i, output in enumerate(body.outputs)
        if _flag(output.parameters, "binary_data", f"outputs[{i}].parameters", default)
    }


def _flag(parameters: dict[str, Any] | None, name: str, field: str, default: bool = False) -> bool:
    value = (parameters or {}).get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"{field}.{name}", "must be true or false")
    return value


def _refuse_extensions(parameters: dict[str, Any] | None, field: str) -> None:
    """Parameters of extensions this server does not implement: refused, never ignored."""
    for name, extension in (
        ("shared_memory_region", "shared memory"),
        ("classification", "classification"),
    ):
        if name in (parameters or {}):
            raise invalid(
                f"{field}.parameters.{name}",
                f"the {extension} extension is not supported; send the data in the request",
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
        _refuse_extensions(output.parameters, f"outputs[{i}]")
    return {o.name for o in body.outputs}


def _decode_input(
    served: Served, tensor: RequestInput, binary: bytes | None
) -> np.ndarray | list[str]:
    """Check datatype, shape and data (JSON or binary) against each other and the model;
    reshape flat data."""
    model = served.model
    count = math.prod(tensor.shape)
    if binary is not None and tensor.data is not None:
        raise invalid("inputs[0].data", f"give data or parameters.{v2_binary.SIZE}, not both")
    if binary is None and tensor.data is None:
        raise invalid(
            "inputs[0].data",
            f"is required (or binary data announced by parameters.{v2_binary.SIZE})",
        )
    if model.raw_input:
        if tensor.datatype != "BYTES":
            raise invalid("inputs[0].datatype", "this text model takes BYTES (strings)")
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise invalid("inputs[0].shape", "text input must have shape [batch] or [batch, 1]")
        texts = _texts(tensor, binary)
        _check_count(len(texts), count, tensor.shape)
        return predictor.text_input(texts, "inputs[0].data")
    if tensor.datatype not in NUMERIC:
        raise invalid(
            "inputs[0].datatype",
            f"this model takes numbers (BOOL, an integer or FP type), not {tensor.datatype}",
        )
    if binary is not None:
        flat = v2_binary.numbers(binary, tensor.datatype, count, "inputs[0]").astype(np.float64)
    else:
        flat = _json_numbers(tensor)
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


def _texts(tensor: RequestInput, binary: bytes | None) -> list[Any]:
    """A BYTES tensor's elements: JSON strings, or binary elements decoded as UTF-8."""
    if binary is None:
        assert tensor.data is not None
        return _flatten(tensor.data, "inputs[0].data")
    texts = []
    for i, item in enumerate(v2_binary.strings(binary, "inputs[0]")):
        try:
            texts.append(item.decode())
        except UnicodeDecodeError:
            raise invalid(f"inputs[0].data[{i}]", "is not UTF-8 text") from None
    return texts


def _json_numbers(tensor: RequestInput) -> np.ndarray:
    """JSON data as float64: numbers, or true/false for BOOL."""
    assert tensor.data is not None
    if tensor.datatype == "BOOL":
        flat = _flatten(tensor.data, "inputs[0].data")
        for i, item in enumerate(flat):
            if not isinstance(item, bool):
                raise invalid(f"inputs[0].data[{i}]", "BOOL values must be true or false")
        return np.asarray(flat, dtype=np.float64)
    try:
        return np.asarray(tensor.data, dtype=np.float64).ravel()
    except (ValueError, TypeError):
        raise invalid(
            "inputs[0].data", f"must be {tensor.datatype} numbers in a flat or regular nested list"
        ) from None


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
