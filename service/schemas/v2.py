"""Open Inference Protocol (KServe V2) REST payloads: health, metadata, infer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
Parameters = dict[str, str | int | float | bool]
Dim = Annotated[int, Field(ge=0)]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str] = Field(default_factory=list)


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks the batch dimension", examples=[[-1, 784]])


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str = Field(examples=["nn-core"])
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class RequestInput(BaseModel):
    name: str = Field(examples=["input"])
    shape: list[Dim] = Field(min_length=1, max_length=8, examples=[[2, 2]])
    datatype: Datatype = Field(examples=["FP32"])
    parameters: Parameters | None = Field(
        default=None,
        description="binary_data_size: the tensor's bytes follow the JSON header instead of data",
    )
    data: list[Any] | None = Field(
        default=None,
        description="Row-major tensor contents, flat or nested (absent for binary data)",
        examples=[[0, 1, 1, 1]],
    )


class RequestOutput(BaseModel):
    name: str
    parameters: Parameters | None = Field(
        default=None, description="binary_data: true answers this tensor as binary data"
    )


class InferRequest(BaseModel):
    id: str | None = Field(default=None, description="Echoed in the response")
    parameters: Parameters | None = Field(
        default=None,
        description="threshold (binary classifiers); binary_data_output: all outputs as binary",
    )
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(
        default=None, description="Outputs to return (default: all)"
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = Field(
        default=None, description="Absent when parameters.binary_data_size is set"
    )


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class ProtocolError(BaseModel):
    """The Open Inference Protocol's error shape, used by every /v2 route."""

    error: str = Field(examples=["inputs[0].shape: expected [batch, 2], got [3]"])
