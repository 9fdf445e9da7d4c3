"""POST /v1/mnist/predict: digits from 784 numbers, 28x28 arrays or PNG images.

Two request bodies on one route: JSON (`instances`, `png` or `pngs`, see
MnistPredictRequest) or multipart with a PNG in the field `file` (plus optional `model`,
`version`, `alias` text fields), so `curl -F file=@seven.png` works. PNGs are turned into
MNIST's format by service/digit_image.py (grayscale on white, inverted if light, cropped
to the ink, longer side 20 px, centred by centre of mass in 28x28, values 0-255). The model
is any owner's 784-input, 10-class softmax classifier (default name "mnist"), served
like :predict's (service/serving.py).

The router is mounted with the upload size limit so photos fit; JSON bodies are still held
to the ordinary body limit here, since they are parsed in memory.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from service import explaining, predictor
from service.api.bodies import body_error
from service.api.errors import error_responses
from service.api.forms import form_fields, form_file, read_upload, uploaded_form
from service.api.predict import PREDICT_RESPONSES
from service.deps import DatabaseDep, ModelCacheDep, SettingsDep
from service.digit_image import png_to_mnist
from service.errors import PayloadTooLarge, ServiceError, invalid
from service.rate_limit import LimiterDep, PredictPrincipalDep, charge
from service.registry.names import version_ref
from service.schemas.tasks import (
    MAX_EXPLAINED,
    DigitPrediction,
    MnistFormFields,
    MnistPredictRequest,
    MnistPredictResponse,
)
from service.serving import Served, VersionTarget, serve

router = APIRouter(tags=["tasks"])

PIXELS = 28 * 28
CLASSES = 10


@dataclass(frozen=True)
class DigitQuery:
    """What to classify, from either body format: instances, or (field, PNG bytes) pairs."""

    model: str
    ref: int | str | None
    field: str
    instances: list[Any] | None = None
    images: tuple[tuple[str, bytes], ...] = ()
    #: Add a saliency map per digit (service/explaining.py).
    explain: bool = False


_FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "file": {
            "type": "string",
            "contentMediaType": "image/png",
            "description": "A PNG of a digit, any size",
        },
        **MnistFormFields.model_json_schema()["properties"],
    },
    "required": ["file"],
}
OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": MnistPredictRequest.model_json_schema()},
            "multipart/form-data": {"schema": _FORM_SCHEMA},
        },
    }
}


@router.post(
    "/v1/mnist/predict",
    response_model=MnistPredictResponse,
    response_model_exclude_none=True,
    responses={**PREDICT_RESPONSES, **error_responses(415)},
    openapi_extra=OPENAPI_BODY,
)
async def predict_digits(
    request: Request,
    principal: PredictPrincipalDep,
    database: DatabaseDep,
    settings: SettingsDep,
    cache: ModelCacheDep,
    limiter: LimiterDep,
) -> MnistPredictResponse:
    """Classify handwritten digits (JSON `instances`, `png`, `pngs`, or a multipart `file`).

    Answers the digit and the ten class probabilities per input; with `explain` (JSON or
    form field) also a 28x28 saliency map. Wrong shapes, NaN, bad or blank PNGs answer 422
    and oversized images 413, each naming the field.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        async with uploaded_form(request, max_files=1, max_fields=4) as form:
            upload = form_file(form, "file", required=True)
            assert upload is not None
            fields = form_fields(MnistFormFields, form, exclude=("file",))
            data = await read_upload(upload, settings.max_upload_bytes, "file")
        ref = version_ref(fields.version, fields.alias)
        images = (("body.file", data),)
        query = DigitQuery(fields.model, ref, "body.file", images=images, explain=fields.explain)
    elif media in ("application/json", ""):
        query = _json_query(await _read_limited(request, settings.max_body_bytes))
    else:
        raise ServiceError.for_field(
            "content-type",
            "unsupported",
            summary=f"unsupported content type {media!r}: send application/json or "
            "multipart/form-data with a PNG in the field 'file'",
            status=415,
        )
    charge(limiter, principal, len(query.images), already_paid=1)  # PredictPrincipalDep
    served = await serve(database, cache, principal.owner, VersionTarget(query.model, query.ref))
    _check_digit_model(served)
    return await run_in_threadpool(_predict, served, query)


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge.for_field(
                "body",
                f"at most {limit} bytes",
                summary=f"a JSON body may be at most {limit} bytes; upload large images as "
                "multipart field 'file'",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _json_query(raw: bytes) -> DigitQuery:
    try:
        # Python's parser also reads NaN and Infinity; the predictor refuses them by name.
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise invalid("body", f"is not valid JSON ({str(exc)[:120]})") from None
    try:
        body = MnistPredictRequest.model_validate(data)
    except ValidationError as exc:
        raise body_error(exc) from None
    given = [k for k in ("instances", "png", "pngs") if getattr(body, k) is not None]
    if len(given) != 1:
        got = ", ".join(given) if given else "none"
        field = given[-1] if given else "instances"
        raise invalid(field, f"give exactly one of instances, png or pngs (got {got})")
    ref = version_ref(body.version, body.alias)
    if body.instances is not None:
        if body.explain and len(body.instances) > MAX_EXPLAINED:
            raise invalid("instances", f"at most {MAX_EXPLAINED} digits are explained at once")
        return DigitQuery(
            body.model, ref, "instances", instances=body.instances, explain=body.explain
        )
    if body.png is not None:
        png = (("png", _b64(body.png, "png")),)
        return DigitQuery(body.model, ref, "png", images=png, explain=body.explain)
    assert body.pngs is not None
    pngs = tuple((f"pngs[{i}]", _b64(item, f"pngs[{i}]")) for i, item in enumerate(body.pngs))
    return DigitQuery(body.model, ref, "pngs", images=pngs, explain=body.explain)


def _b64(text: str, field: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise invalid(field, "is not valid base64") from None


def _predict(served: Served, query: DigitQuery) -> MnistPredictResponse:
    if query.images:
        x = np.stack([png_to_mnist(data, field) for field, data in query.images])
    else:
        assert query.instances is not None
        x = _instances(query.instances)
    model_input = predictor.numeric_input(served.model, x, query.field)
    decoded = predictor.run(served.model, model_input, query.field)
    assert decoded.probabilities is not None
    digits = decoded.probabilities.argmax(axis=1)
    maps: list[Any] = [None] * len(digits)
    if query.explain:
        x64 = model_input.astype(np.float64)
        maps = explaining.saliency_maps(served.model, x64, digits, 28).tolist()
    return MnistPredictResponse(
        model=served.name,
        version=served.number,
        predictions=[
            DigitPrediction(digit=int(digit), probabilities=row.tolist(), saliency=saliency)
            for digit, row, saliency in zip(
                digits.tolist(), decoded.probabilities.astype(np.float64), maps, strict=True
            )
        ],
    )


def _check_digit_model(served: Served) -> None:
    model = served.model
    ok = (
        not model.raw_input
        and model.input_dim == PIXELS
        and model.head.is_classifier
        and model.head.n_columns == CLASSES
        and not model.head.multilabel
        and len(model.classes) == CLASSES
    )
    if not ok:
        raise invalid(
            "model",
            f"{served.name!r} version {served.version} is not a digit classifier "
            f"({PIXELS} inputs, {CLASSES} softmax classes); train one with the mnist-mlp preset",
        )


def _instances(instances: list[Any]) -> np.ndarray:
    """Each instance as 784 values, whether sent flat or as 28x28 rows."""
    rows = []
    for i, item in enumerate(instances):
        try:
            arr = np.asarray(item, dtype=np.float64)
        except (ValueError, TypeError):
            arr = None
        if arr is None or arr.shape not in ((PIXELS,), (28, 28)):
            raise invalid(f"instances[{i}]", "must be 784 numbers or a 28x28 array of numbers")
        rows.append(arr.reshape(PIXELS))
    return np.stack(rows)
