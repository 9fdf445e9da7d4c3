"""Try it, in Chromium against a real server: draw a digit, score a message.

The models are trained first: the digit model with nn_core on scikit-learn's bundled 8x8
digits and uploaded as a model file (MNIST is a download this test must not need); the spam
model by a real training job on the SMS Spam copy the team shares. Each test skips, saying
so, only while the server has no such route at all.
"""

from __future__ import annotations

import io
import shutil
import time
from typing import Any

import numpy as np
import pytest
from e2e_helpers import Server, screenshot
from PIL import Image

from nn_core.serialize import save_model
from nn_core.spec import build_model
from nn_core.training import train
from service.digit_image import png_to_mnist

pytestmark = pytest.mark.browser

SPAM_SPEC = {
    "preprocess": [{"type": "text_features", "n_features": 1024}],
    "layers": [
        {"type": "dense", "units": 16, "activation": "relu"},
        {"type": "dense", "units": 1, "activation": "sigmoid"},
    ],
    "loss": "binary_crossentropy",
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 3, "batch_size": 64, "seed": 0},
}


def require_route(server: Server, path: str) -> None:
    with server.client() as http:
        response = http.post(path, json={})
    if response.status_code == 404 and response.json()["error"]["message"].startswith(
        "no such resource"
    ):
        pytest.skip(f"the server has no {path} route yet (404 for the route itself)")


def digit_model_file() -> bytes:
    """A real digit classifier: scikit-learn's bundled 8x8 handwritten digits (1,797 images, no
    download), each put through the service's own PNG -> MNIST steps (invert, crop, 20x20 box,
    centre of mass), so it reads a drawing the way an MNIST-trained model would."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.stack([png_to_mnist(_png(image), "file") for image in digits.images])
    spec = {
        "input_dim": 784,
        "preprocess": [{"type": "scale", "factor": 1 / 255}],
        "layers": [
            {"type": "dense", "units": 64, "activation": "relu"},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.003},
        "training": {"epochs": 30, "batch_size": 32, "seed": 0},
    }
    model = build_model(spec)
    train(model, x.astype(np.float32), digits.target)
    return save_model(model)


def _png(image: np.ndarray) -> bytes:
    """An 8x8 digit (0-16, ink high) as a dark-on-light PNG, like a drawing on paper."""
    pixels = (255 - image * 255 / 16).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def draw_seven(page: Any) -> None:
    """Draw a "7" on the digit canvas with the mouse (the view predicts on pointer up)."""
    box = page.locator("#digit-canvas").bounding_box()
    assert box is not None
    x, y = box["x"], box["y"]
    page.mouse.move(x + 80, y + 70)
    page.mouse.down()
    for step in range(1, 11):  # the bar, then the diagonal
        page.mouse.move(x + 80 + 12 * step, y + 70)
    for step in range(1, 16):
        page.mouse.move(x + 200 - 6 * step, y + 70 + 11 * step)
    page.mouse.up()


def test_draw_a_digit_and_see_the_prediction(page: Any, server: Server) -> None:
    require_route(server, "/v1/mnist/predict")
    with server.client() as http:
        files = {"file": ("mnist.npz", digit_model_file(), "application/octet-stream")}
        response = http.post("/v1/models/mnist/versions", files=files)
        assert response.status_code == 201, response.text

    page.goto(f"{server.base}/#/try")
    draw_seven(page)
    page.wait_for_selector("#digit-bars .bar")
    assert page.inner_text("#digit-result") == "7"
    assert page.locator("#digit-bars .bar").count() == 10
    assert "mnist v1" in page.inner_text("#digit-meta")

    page.click("#digit-clear")
    assert page.inner_text("#digit-result") == "?"


def test_score_a_message(page: Any, server: Server, sms_spam_path: Any) -> None:
    require_route(server, "/v1/spam/score")
    target = server.data_dir / "datasets" / "sms-spam" / "SMSSpamCollection"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sms_spam_path, target)
    with server.client() as http:
        body = {"spec": SPAM_SPEC, "dataset": "sms-spam", "model_name": "spam"}
        job = http.post("/v1/jobs", json=body).json()
        deadline = time.monotonic() + 120
        while (state := http.get(f"/v1/jobs/{job['id']}").json())["status"] not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
        assert state["status"] == "succeeded", state

    page.goto(f"{server.base}/#/try")
    page.fill("#spam-text", "Are we still meeting for lunch at noon tomorrow?")
    page.click("#spam-score")
    page.wait_for_selector("#spam-label.ham")
    assert "spam v1" in page.inner_text("#spam-result")
    page.fill("#spam-text", "WINNER!! Claim your free prize now, call 09061701461 txt WIN")
    page.click("#spam-score")
    page.wait_for_selector("#spam-label.spam")

    with server.client() as http:
        has_digit_model = http.get("/v1/models/mnist").status_code == 200
    if has_digit_model:  # the screenshot shows both halves of the view
        draw_seven(page)
        page.wait_for_selector("#digit-bars .bar")
    screenshot(page, "try-it")
