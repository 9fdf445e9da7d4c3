"""The Open Inference Protocol (V2) as its reference client uses it: tritonclient's HTTP
clients, sync and asyncio, against `nn-service serve` as a real process.

tritonclient sends tensors in the binary tensor data extension by default, no Content-Type,
and reads errors as {"error": "<message>"}; each of those is exercised here as it ships.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from environment import missing
from server_process import ServerProcess
from service_helpers import bearer
from serving_helpers import (
    binary_model_file,
    regression_model_file,
    spam_model_file,
    xor_model_file,
)

from nn_core.serialize import save_model
from nn_core.spec import build_model
from nn_core.training import train

try:
    import tritonclient.http as triton
    import tritonclient.http.aio as triton_aio
    from tritonclient.utils import InferenceServerException
except ImportError:  # pragma: no cover - the fixture below says what to install
    triton = triton_aio = None  # type: ignore[assignment]

XOR_X = [[0, 0], [0, 1], [1, 0], [1, 1]]
XOR_LABELS = [b"no", b"yes", b"yes", b"no"]
SPAM_TEXTS = ["win a free prize now", "see you later"]
README = Path(__file__).resolve().parents[2] / "README.md"


class Served:
    """The running server: its host:port for tritonclient and the headers with its key."""

    def __init__(self, process: ServerProcess) -> None:
        self.url = process.base.removeprefix("http://")
        self.key = process.key

    @property
    def headers(self) -> dict[str, str]:
        """A new dict per call: tritonclient adds Inference-Header-Content-Length to the dict
        it is given, which would then be sent again with the next (JSON) request."""
        return bearer(self.key)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if triton is None:
        missing("tritonclient is not installed: pip install 'tritonclient[http]'")
    tmp: Path = tmp_path_factory.mktemp("v2-tritonclient")
    process = ServerProcess(tmp, f"sqlite:///{tmp}/data/nns.db")
    process.start()
    try:
        served = Served(process)
        for name, data in [
            ("xor", xor_model_file()),
            ("spam", spam_model_file()),
            ("binary", binary_model_file()),
            ("line", regression_model_file()),
        ]:
            upload = httpx.post(
                f"{process.base}/v1/models/{name}/versions",
                headers=served.headers,
                files={"file": ("model.npz", data)},
            )
            assert upload.status_code == 201, upload.text
        yield served
        log = process.log_path.read_text()
        assert "Traceback" not in log, log
    finally:
        process.stop()


@pytest.fixture
def client(served: Served) -> Iterator[Any]:
    client = triton.InferenceServerClient(served.url)
    try:
        yield client
    finally:
        client.close()


def tensor(name: str, array: np.ndarray, binary: bool = True) -> Any:
    data = triton.InferInput(name, list(array.shape), _datatype(array))
    data.set_data_from_numpy(array, binary_data=binary)
    return data


def _datatype(array: np.ndarray) -> str:
    from tritonclient.utils import np_to_triton_dtype

    datatype: str = np_to_triton_dtype(array.dtype)
    return datatype


# ----------------------------------------------------------------------------- sync client


def test_health_and_metadata(client: Any, served: Served) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    assert client.is_model_ready("xor", headers=served.headers)
    assert not client.is_model_ready("nope", headers=served.headers)
    metadata = client.get_model_metadata("xor", headers=served.headers)
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}]
    assert [o["name"] for o in metadata["outputs"]] == ["probabilities", "label"]
    text = client.get_model_metadata("spam", model_version="1", headers=served.headers)
    assert text["inputs"][0]["datatype"] == "BYTES"


def test_infer_with_binary_tensors_by_default(client: Any, served: Served) -> None:
    x = np.array(XOR_X, dtype=np.float32)
    result = client.infer("xor", [tensor("input", x)], request_id="req-7", headers=served.headers)
    response = result.get_response()
    assert response["id"] == "req-7" and response["model_version"] == "1"
    # No outputs named: tritonclient asks for all of them as binary data.
    for output in response["outputs"]:
        assert "data" not in output and output["parameters"]["binary_data_size"] > 0
    assert list(result.as_numpy("label")) == XOR_LABELS
    probabilities = result.as_numpy("probabilities").reshape(4, 2)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert list(probabilities.argmax(axis=1)) == [0, 1, 1, 0]


def test_infer_with_json_tensors_and_requested_outputs(client: Any, served: Served) -> None:
    x = np.array(XOR_X, dtype=np.float32)
    binary = client.infer("xor", [tensor("input", x)], headers=served.headers)
    outputs = [
        triton.InferRequestedOutput("label", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=True),
    ]
    mixed = client.infer(
        "xor", [tensor("input", x, binary=False)], outputs=outputs, headers=served.headers
    )
    by_name = {output["name"]: output for output in mixed.get_response()["outputs"]}
    label, probabilities = by_name["label"], by_name["probabilities"]
    assert label["data"] == ["no", "yes", "yes", "no"] and label["parameters"] is None
    assert "data" not in probabilities and probabilities["parameters"]["binary_data_size"] == 32
    assert list(mixed.as_numpy("label")) == ["no", "yes", "yes", "no"]
    np.testing.assert_array_equal(mixed.as_numpy("probabilities"), binary.as_numpy("probabilities"))

    only_json = client.infer(
        "xor",
        [tensor("input", x, binary=False)],
        outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)],
        headers=served.headers,
    )
    (output,) = only_json.get_response()["outputs"]
    assert output["name"] == "probabilities" and len(output["data"]) == 8
    np.testing.assert_allclose(
        only_json.as_numpy("probabilities"), binary.as_numpy("probabilities"), rtol=1e-6
    )


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize(
    "dtype",
    [np.float64, np.float16, np.int32, np.int8, np.int64, np.uint8, np.uint16, np.uint64, bool],
)
def test_every_numeric_datatype_is_read(
    client: Any, served: Served, dtype: Any, binary: bool
) -> None:
    x = np.array(XOR_X).astype(dtype)
    result = client.infer("xor", [tensor("input", x, binary)], headers=served.headers)
    assert list(result.as_numpy("label")) == XOR_LABELS


def test_regression_outputs_and_compressed_request(client: Any, served: Served) -> None:
    x = np.array([[0], [1], [-1]], dtype=np.int64)
    result = client.infer(
        "line", [tensor("input", x)], headers=served.headers, request_compression_algorithm="gzip"
    )
    predictions = result.as_numpy("predictions").reshape(3)
    assert predictions.dtype == np.float32
    np.testing.assert_allclose(predictions, [1, 3, -1], atol=0.2)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bytes_input_to_a_text_model(client: Any, served: Served, binary: bool) -> None:
    texts = np.array([t.encode() for t in SPAM_TEXTS], dtype=np.object_)
    result = client.infer("spam", [tensor("input", texts, binary)], headers=served.headers)
    assert list(result.as_numpy("label")) == [b"spam", b"ham"]


def test_threshold_parameter(client: Any, served: Served) -> None:
    x = np.array([[0.4, -0.4]], dtype=np.float32)
    default = client.infer("binary", [tensor("input", x)], headers=served.headers)
    probability = float(default.as_numpy("probabilities").reshape(-1)[-1])
    assert 0 < probability < 1
    below = client.infer(
        "binary",
        [tensor("input", x)],
        parameters={"threshold": probability / 2},
        headers=served.headers,
    )
    above = client.infer(
        "binary",
        [tensor("input", x)],
        parameters={"threshold": (1 + probability) / 2},
        headers=served.headers,
    )
    assert list(below.as_numpy("label")) == [b"yes"]
    assert list(above.as_numpy("label")) == [b"no"]
    assert above.get_response()["parameters"]["threshold"] == pytest.approx((1 + probability) / 2)


def test_errors_are_readable(client: Any, served: Served) -> None:
    x = np.array(XOR_X, dtype=np.float32)
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("nope", [tensor("input", x)], headers=served.headers)
    assert unknown.value.status() == "404"
    assert unknown.value.message() == "model 'nope' not found"

    wide = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(InferenceServerException) as shape:
        client.infer("xor", [tensor("input", wide)], headers=served.headers)
    assert shape.value.status() == "422"
    assert shape.value.message().startswith("inputs[0].shape: expected [batch, 2]")

    with pytest.raises(InferenceServerException) as threshold:
        client.infer(
            "line",
            [tensor("input", x[:, :1])],
            parameters={"threshold": 0.3},
            headers=served.headers,
        )
    assert threshold.value.message().startswith("parameters.threshold: ")

    with pytest.raises(InferenceServerException) as no_key:
        client.infer("xor", [tensor("input", x)])
    assert no_key.value.status() == "401" and "API key" in no_key.value.message()

    with pytest.raises(InferenceServerException) as metadata:
        client.get_model_metadata("nope", headers=served.headers)
    assert metadata.value.message() == "model 'nope' not found"


# ----------------------------------------------------------------------------- asyncio client


@pytest.mark.anyio
async def test_asyncio_client(served: Served) -> None:
    client = triton_aio.InferenceServerClient(served.url)
    try:
        assert await client.is_server_live() and await client.is_server_ready()
        assert await client.is_model_ready("xor", headers=served.headers)
        metadata = await client.get_model_metadata("xor", headers=served.headers)
        assert metadata["inputs"][0]["shape"] == [-1, 2]

        x = np.array(XOR_X, dtype=np.uint8)
        binary = await client.infer(
            "xor", [tensor("input", x)], request_id="aio-1", headers=served.headers
        )
        assert binary.get_response()["id"] == "aio-1"
        assert list(binary.as_numpy("label")) == XOR_LABELS
        as_json = await client.infer(
            "xor",
            [tensor("input", x.astype(np.int32), binary=False)],
            outputs=[triton.InferRequestedOutput("label", binary_data=False)],
            headers=served.headers,
        )
        assert list(as_json.as_numpy("label")) == ["no", "yes", "yes", "no"]

        texts = np.array([t.encode() for t in SPAM_TEXTS], dtype=np.object_)
        text = await client.infer("spam", [tensor("input", texts)], headers=served.headers)
        assert list(text.as_numpy("label")) == [b"spam", b"ham"]

        with pytest.raises(InferenceServerException) as unknown:
            await client.infer("nope", [tensor("input", x)], headers=served.headers)
        assert unknown.value.message() == "model 'nope' not found"
        with pytest.raises(InferenceServerException) as shape:
            await client.infer(
                "xor", [tensor("input", np.zeros((1, 3), np.float64))], headers=served.headers
            )
        assert shape.value.message().startswith("inputs[0].shape: ")
    finally:
        await client.close()


# ----------------------------------------------------------------------------- README


@cache
def quick_start_xor_file() -> bytes:
    """The README quick start's `xor` model: its spec, labels 1 where x*y >= 0, else 0."""
    model = build_model(
        {
            "input_dim": 2,
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.05},
            "training": {"epochs": 60, "batch_size": 16, "seed": 0},
        }
    )
    x = np.random.default_rng(0).uniform(-1, 1, size=(200, 2))
    train(model, x, (x[:, 0] * x[:, 1] >= 0).astype(int))
    return save_model(model)


def test_readme_example_runs_as_pasted(tmp_path: Path) -> None:
    if triton is None:
        missing("tritonclient is not installed: pip install 'tritonclient[http]'")
    section = README.read_text().split("\n## Open Inference Protocol (V2) clients\n")[1]
    (example,) = re.findall(r"```python\n(.*?)```", section.split("\n## ")[0], re.S)
    process = ServerProcess(tmp_path, f"sqlite:///{tmp_path}/data/nns.db")
    process.start()
    try:
        upload = httpx.post(
            f"{process.base}/v1/models/xor/versions",
            headers=bearer(process.key),
            files={"file": ("model.npz", quick_start_xor_file())},
        )
        assert upload.status_code == 201, upload.text
        done = subprocess.run(
            [sys.executable, "-c", example.replace("127.0.0.1:8000", process.base[7:])],
            cwd=tmp_path,  # where data/admin-key is, as in the README
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        process.stop()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "True" and lines[1] == "q-1 [1 0]", done.stdout
    assert lines[-1] == "404 model 'nope' not found", done.stdout
