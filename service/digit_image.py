"""A PNG of a handwritten digit -> the 784 values an MNIST model was trained on.

MNIST digits are white on black, fit in a 20x20 box and sit in a 28x28 field with their
centre of mass at the centre (LeCun et al.). A drawing from a canvas or a phone photo is
usually the opposite (dark ink on a light page, any size, anywhere), so a raw resize would
score badly. The steps, in order:

1. Decode (PNG only; at most MAX_PIXELS pixels, checked from the PNG header before Pillow
   sees the bytes), then shrink to at most WORK_SIDE pixels a side before any float copy,
   so one image costs tens of megabytes at most, not gigabytes.
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
import struct

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import PayloadTooLarge, invalid

SIDE = 28
BOX = 20
#: Refuse larger images before decoding: the answer is a 28x28 digit, so 4 megapixels (a
#: 2000x2000 photo, 16 MB decoded as RGBA) is plenty, and a few bytes of PNG can declare
#: billions of pixels.
MAX_PIXELS = 4_000_000
#: Decoded images are shrunk to at most this many pixels a side before the float work
#: (float32: 4 MB a plane), so a canvas or screenshot is used as drawn and only photos shrink.
WORK_SIDE = 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: After stretching to 0-255, pixels above this count as ink for the bounding box (keeps
#: paper texture and JPEG-like noise out of the crop).
INK_LEVEL = 40.0


def png_to_mnist(data: bytes, field: str) -> np.ndarray:
    """784 float64 values in 0-255 from PNG bytes; 4xx naming `field` for a bad image."""
    gray = _grayscale(_shrunk(_decode(data, field)))
    ink = _normalized_ink(gray)
    rows = np.flatnonzero((ink > INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > INK_LEVEL).any(axis=0))
    if len(rows) == 0:
        raise invalid(field, "the image is blank: no digit found")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return _center(_fit_box(crop)).reshape(SIDE * SIDE)


def _decode(data: bytes, field: str) -> Image.Image:
    if not data.startswith(_PNG_SIGNATURE):
        raise invalid(field, "is not a PNG image")
    width, height = _declared_size(data, field)
    if width * height > MAX_PIXELS:
        raise PayloadTooLarge.for_field(
            field,
            "image too large",
            summary=f"{field}: the image is {width}x{height} pixels; at most {MAX_PIXELS:,} "
            "(e.g. 2000x2000): scale it down first",
        )
    if width < 1 or height < 1:
        raise invalid(field, "the image has no pixels")
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise invalid(field, f"cannot read the PNG ({str(exc)[:120]})") from None
    if image.size != (width, height):
        raise invalid(field, "cannot read the PNG (its header is inconsistent)")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise invalid(field, f"cannot decode the PNG ({str(exc)[:120]})") from None
    return image


def _declared_size(data: bytes, field: str) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which the PNG format puts first: read before
    Pillow opens the file, whose own bomb check raises for huge sizes instead of answering."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise invalid(field, "cannot read the PNG (no IHDR header chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _shrunk(image: Image.Image) -> Image.Image:
    """At most WORK_SIDE pixels a side, in a mode that resizes well (8-bit L, LA or RGBA)."""
    if image.mode.startswith("I"):  # 16/32-bit grey: scale to 8 bits in integers
        arr = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        top = 65535 if int(arr.max(initial=0)) > 255 else 255
        image = Image.fromarray((arr * 255 // top).astype(np.uint8), "L")
    elif image.mode not in ("L", "LA", "RGB", "RGBA"):
        has_alpha = image.mode in ("PA",) or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif "transparency" in image.info:
        image = image.convert("RGBA")
    if max(image.size) > WORK_SIDE:
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def _grayscale(image: Image.Image) -> np.ndarray:
    """Float grey levels 0-255, alpha composited on white."""
    if image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32)


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
