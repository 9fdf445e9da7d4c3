"""Uploaded model files: checked completely before anything is stored.

An nn-core model file is an npz with a JSON header (nn_core.serialize). The arrays' declared
sizes and dtypes are read from the npz headers before NumPy allocates anything (a crafted
header could ask for terabytes, or for object arrays that would need pickle); then the model
is rebuilt from its spec and every array checked against it, within the parameter limit.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from nn_core.errors import NNCoreError
from nn_core.model import Model as NNModel
from nn_core.serialize import load_model
from service.errors import PayloadTooLarge, Unprocessable

#: Cap on the arrays a model file declares, checked from the npz headers before loading.
MAX_MODEL_FILE_ARRAY_BYTES = 1 << 30


def validate_model_file(data: bytes, max_params: int) -> NNModel:
    """Load an uploaded model file fully (spec, shapes, dtypes, parameter limit) or raise 4xx."""
    _check_file_arrays(data)
    try:
        return load_model(data, max_params=max_params)
    except NNCoreError as exc:
        raise _bad_file(getattr(exc, "message", str(exc))) from None
    except MemoryError:
        raise PayloadTooLarge.for_field(
            "file", "too large", summary="the model file is too large to load"
        ) from None
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
        raise Unprocessable.for_field(
            "file", str(exc)[:200], summary=f"not a usable model file: {exc}"
        ) from None


def _check_file_arrays(data: bytes) -> None:
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                with archive.open(member) as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    header = (
                        np.lib.format.read_array_header_1_0
                        if major == 1
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = header(fh)
                if dtype.hasobject:
                    raise _bad_file(f"array {member!r} is an object array (would need pickle)")
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError) as exc:
        raise _bad_file(f"not an nn-core model file ({exc})") from None
    if total > MAX_MODEL_FILE_ARRAY_BYTES:
        raise PayloadTooLarge.for_field(
            "file",
            "arrays too large",
            summary=f"the model file declares {total:,} bytes of arrays "
            f"(limit {MAX_MODEL_FILE_ARRAY_BYTES:,})",
        )


def _bad_file(message: str) -> Unprocessable:
    return Unprocessable.for_field("file", message, summary=f"not a usable model file: {message}")
