"""A PNG of a handwritten digit -> the 784 values an MNIST model was trained on.

MNIST digits are white on black, fit in a 20x20 box and sit in a 28x28 field with their
centre of mass at the centre (LeCun et al.). A drawing from a canvas or a phone photo is
usually the opposite (dark ink on a light page, any size, anywhere), so a raw resize would
score badly. The steps, in order:

1. Decode (PNG only; at most MAX_PIXELS pixels, checked from the header before decoding).
2. Grayscale: an alpha channel is composited on white first (a transparent canvas with
   dark strokes reads as ink on paper); 16-bit images are scaled to 0-255.
3. Invert when the background is light (the median of the border pixels is above 127), so
   the digit is bright on dark as in MNIST.
4. Remove the background level (that border median) and stretch the ink to 0-255.
5. Crop to the bounding box of the ink (pixels above INK_LEVEL); a blank image is refused.
6. Scale the longer side to 20 px, keeping the aspect ratio (Lanczos, i.e. anti-aliased).
7. Paste into a 28x28 black field so the centre of mass lands on the centre (13.5, 13.5),
   shifted back inside the field if a lopsided digit would otherwise be cut off.

The result is 0-255 floats (row-major, 784 values); the model's own preprocess (the
mnist-mlp preset scales by 1/255) does the rest, exactly as for the JSON instances.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import PayloadTooLarge, invalid

SIDE = 28
BOX = 20
#: Refuse larger images before decoding: a 40-megapixel photo is the most anyone needs, and
#: a few bytes of PNG can declare billions of pixels.
MAX_PIXELS = 40_000_000
#: After stretching to 0-255, pixels above this count as ink for the bounding box (keeps
#: paper texture and JPEG-like noise out of the crop).
INK_LEVEL = 40.0


def png_to_mnist(data: bytes, field: str) -> np.ndarray:
    """784 float64 values in 0-255 from PNG bytes; 4xx naming `field` for a bad image."""
    gray = _grayscale(_decode(data, field))
    ink = _normalized_ink(gray)
    rows = np.flatnonzero((ink > INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > INK_LEVEL).any(axis=0))
    if len(rows) == 0:
        raise invalid(field, "the image is blank: no digit found")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return _center(_fit_box(crop)).reshape(SIDE * SIDE)


def _decode(data: bytes, field: str) -> Image.Image:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise invalid(field, "is not a PNG image")
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise invalid(field, f"cannot read the PNG ({str(exc)[:120]})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:  # below Pillow's own bomb limit, so checked first
        raise PayloadTooLarge.for_field(
            field,
            "image too large",
            summary=f"{field}: the image is {width}x{height} pixels; at most {MAX_PIXELS:,}",
        )
    if width < 1 or height < 1:
        raise invalid(field, "the image has no pixels")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise invalid(field, f"cannot decode the PNG ({str(exc)[:120]})") from None
    return image


def _grayscale(image: Image.Image) -> np.ndarray:
    """Float grey levels 0-255, alpha composited on white."""
    if image.mode.startswith("I"):  # 16-bit (or 32-bit integer) grey
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0.0) > 255 else 255.0
        return np.clip(arr * (255.0 / top), 0.0, 255.0)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float64)


def _normalized_ink(gray: np.ndarray) -> np.ndarray:
    """Bright ink on black: inverted if the border is light, background removed, stretched."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 127.0:
        gray = 255.0 - gray
        background = 255.0 - background
    ink = np.clip(gray - background, 0.0, None)
    peak = float(ink.max(initial=0.0))
    return ink * (255.0 / peak) if peak > 0 else ink


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale so the longer side is BOX pixels, keeping the aspect ratio."""
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(crop.astype(np.float32))  # mode "F"
    resized = image.resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 255.0)


def _center(digit: np.ndarray) -> np.ndarray:
    """Place `digit` in a SIDE x SIDE field with its centre of mass at the centre."""
    height, width = digit.shape
    total = digit.sum()
    if total > 0:
        cy = float((digit.sum(axis=1) * np.arange(height)).sum() / total)
        cx = float((digit.sum(axis=0) * np.arange(width)).sum() / total)
    else:
        cy, cx = (height - 1) / 2, (width - 1) / 2
    centre = (SIDE - 1) / 2
    top = min(max(round(centre - cy), 0), SIDE - height)
    left = min(max(round(centre - cx), 0), SIDE - width)
    field = np.zeros((SIDE, SIDE), dtype=np.float64)
    field[top : top + height, left : left + width] = digit
    return field
