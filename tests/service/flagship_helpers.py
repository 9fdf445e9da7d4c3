"""Small real models and images for the flagship task tests (MNIST digits, spam scoring)."""

from __future__ import annotations

import base64
import io
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from nn_core.presets import preset_spec
from nn_core.serialize import save_model
from nn_core.spec import build_model
from nn_core.training import train


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """784-wide 0-255 "images": class k lights a 4-row band at rows 2k..2k+3, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = rng.uniform(0, 40, size=(n, 28, 28))
    for i, k in enumerate(y):
        x[i, 2 * k + 4 : 2 * k + 8, 4:24] = 255.0
    return x.reshape(n, 784).astype(np.float32), y


@cache
def digit_model_file() -> bytes:
    """The mnist-mlp preset (784 inputs, scale 1/255, 10 softmax classes), 2 epochs on
    synthetic images: a real digit-shaped model in well under a second."""
    spec = preset_spec("mnist-mlp")
    spec["layers"][0]["units"], spec["layers"][1]["units"] = 32, 16
    spec["training"].update(epochs=2, batch_size=32)
    model = build_model(spec)
    x, y = synthetic_digits(600)
    train(model, x, y)
    return save_model(model)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def drawn_seven(size: tuple[int, int] = (300, 240), mode: str = "RGB") -> Image.Image:
    """A black "7" drawn on a white canvas (as from a drawing app), off centre."""
    image = Image.new(mode, size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.line([(w * 0.2, h * 0.2), (w * 0.6, h * 0.2)], fill="black", width=max(2, w // 30))
    draw.line([(w * 0.6, h * 0.2), (w * 0.35, h * 0.85)], fill="black", width=max(2, w // 30))
    return image
