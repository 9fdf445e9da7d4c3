"""PNG -> MNIST conversion: inversion, alpha, crop, 20 px box, centre of mass, bad images."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from flagship_helpers import drawn_seven, png_bytes
from PIL import Image, ImageOps

from service.digit_image import MAX_PIXELS, png_to_mnist
from service.errors import PayloadTooLarge, Unprocessable


def _grid(data: bytes) -> np.ndarray:
    out = png_to_mnist(data, "png")
    assert out.shape == (784,)
    return out.reshape(28, 28)


def _centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    total = x.sum()
    rows = (x.sum(axis=1) * np.arange(28)).sum() / total
    cols = (x.sum(axis=0) * np.arange(28)).sum() / total
    return float(rows), float(cols)


def _close(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two images."""
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_drawing_becomes_an_mnist_digit() -> None:
    x = _grid(png_bytes(drawn_seven()))
    assert x.min() >= 0.0 and x.max() == pytest.approx(255.0, abs=10)
    # white digit on black: the corners are background
    assert x[0, 0] == x[-1, -1] == 0.0
    rows = np.flatnonzero(x.max(axis=1) > 0)
    cols = np.flatnonzero(x.max(axis=0) > 0)
    longer = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    assert 20 <= longer <= 22  # 20 px box, plus at most a pixel of resampling halo per side
    cy, cx = _centre_of_mass(x)
    assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0


def test_light_and_dark_backgrounds_give_the_same_digit() -> None:
    drawing = drawn_seven()
    inverted = ImageOps.invert(drawing)
    assert _close(_grid(png_bytes(drawing)), _grid(png_bytes(inverted))) > 0.99


def test_transparent_canvas_is_composited_on_white() -> None:
    strokes = drawn_seven().convert("L")
    rgba = Image.new("RGBA", strokes.size, (0, 0, 0, 0))
    rgba.putalpha(ImageOps.invert(strokes))  # opaque black only where the strokes are
    assert _close(_grid(png_bytes(rgba)), _grid(png_bytes(drawn_seven()))) > 0.98


def _close_up_to_a_pixel(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation over shifts of up to one pixel: centring by the centre of mass
    rounds to whole pixels, and thin strokes one pixel apart barely overlap."""
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return max(_close(np.roll(a, shift, axis=(0, 1)), b) for shift in shifts)


@pytest.mark.parametrize("size", [(90, 70), (150, 120), (600, 480), (1200, 960)])
def test_size_does_not_matter(size: tuple[int, int]) -> None:
    reference = _grid(png_bytes(drawn_seven((300, 240))))
    assert _close_up_to_a_pixel(_grid(png_bytes(drawn_seven(size))), reference) > 0.85


def test_position_on_the_canvas_does_not_matter() -> None:
    drawing = drawn_seven((300, 240))
    canvas = Image.new("RGB", (900, 700), "white")
    canvas.paste(drawing.crop((40, 30, 200, 220)), (600, 420))
    moved = _grid(png_bytes(canvas))
    assert _close(moved, _grid(png_bytes(drawing))) > 0.99


def test_an_upscaled_mnist_image_comes_back() -> None:
    digit = _grid(png_bytes(drawn_seven()))
    paper = 255 - digit.astype(np.uint8)  # dark ink on light paper, ten times larger
    upscaled = Image.fromarray(paper).resize((280, 280), Image.Resampling.NEAREST)
    assert _close(_grid(png_bytes(upscaled)), digit) > 0.95


@pytest.mark.parametrize("mode", ["L", "P", "1", "LA", "I;16"])
def test_image_modes(mode: str) -> None:
    reference = _grid(png_bytes(drawn_seven()))
    image = drawn_seven().convert("L")
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(image, dtype=np.uint16) * 257)
    else:
        converted = image.convert(mode)
    assert _close(_grid(png_bytes(converted)), reference) > 0.95


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_huge_declared_image_is_refused_before_decoding() -> None:
    side = int(MAX_PIXELS**0.5) + 100
    with pytest.raises(PayloadTooLarge) as caught:
        png_to_mnist(_png_header_only(side, side), "pngs[2]")
    assert caught.value.details[0].field == "pngs[2]"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"GIF89a not a png", "not a PNG"),
        (b"", "not a PNG"),
        (png_bytes(drawn_seven())[:200], "PNG"),
        (_png_header_only(40, 40), "PNG"),  # IDAT far too short for 40x40
        (png_bytes(Image.new("L", (50, 50), 255)), "blank"),
        (png_bytes(Image.new("RGB", (50, 50), (0, 0, 0))), "blank"),
    ],
)
def test_bad_images_are_422_naming_the_field(data: bytes, words: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        png_to_mnist(data, "body.file")
    assert caught.value.details[0].field == "body.file"
    assert words in caught.value.message
