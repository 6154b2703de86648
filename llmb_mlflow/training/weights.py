"""A model's weights at one evaluation step, so the playground can use the model as it was then.

One ``.npz`` per step under the run's ``weights/`` artifact folder, beside the step's
snapshot: the model's shape as JSON, every tensor's name and shape as JSON, and all tensors one
after another in one float16 array (half the bytes of float32; the playground's top-10
probabilities stay within 0.001 of full precision). One array rather than one per tensor: it
decodes in a quarter of the time, which a playground swapping steps waits for. Stored, not
deflated: deflate shrinks float16 weights by under 8 % and took 50–90 ms of every evaluation
on the training's own path; deflated files are read too. A file of another format version is
refused. Numpy only, loaded with ``allow_pickle=False``: reading it never runs code from the
file. The model settings and the arrays' shapes (from the layout and the ``.npy`` headers) are
checked (``shapes.check``) before any array is loaded.
"""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np

from ..errors import LLMBError
from . import shapes
from .config import ModelConfig
from .shapes import DEFAULT_MAX_PARAMS

FORMAT_VERSION = 2
CONFIG_KEY, VERSION_KEY, LAYOUT_KEY, WEIGHTS_KEY = "model_config", "format_version", "layout", "weights"
MAX_UNPACKED_BYTES = 64 * 2**20  # the largest preset's weights unpack to under 2 MB


def encode(state: dict[str, np.ndarray], model_config: dict) -> bytes:
    """``state``: a model's ``state_dict`` as arrays; ``model_config``: its ModelConfig fields."""
    buffer = io.BytesIO()
    arrays = {name: np.asarray(value) for name, value in state.items()}
    layout = [[name, list(array.shape)] for name, array in arrays.items()]
    flat = np.concatenate([a.ravel() for a in arrays.values()]).astype(np.float16) if arrays \
        else np.zeros(0, np.float16)
    np.savez(buffer, **{VERSION_KEY: np.int32(FORMAT_VERSION), CONFIG_KEY: np.str_(json.dumps(model_config)),
                        LAYOUT_KEY: np.str_(json.dumps(layout)), WEIGHTS_KEY: flat})
    return buffer.getvalue()


def decode(data: bytes, label: str = "weights", max_params: int = DEFAULT_MAX_PARAMS,
           raise_with: str | None = None) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """The model's shape and its weights (float32), once ``shapes.check`` has found the stored
    settings good, the model within ``max_params`` and every array of the shape they make
    (``raise_with``: how to allow more); anything else is a one-line LLMBError."""
    given, layout = _read(data, label, _layout)
    config = shapes.check(given, dict(layout), label, max_params, raise_with)
    _, state = _read(data, label, _state)
    return config, state


class OtherVersion(LLMBError):
    """Weights stored in a format version this program does not read (a reader may fall back
    to a checkpoint)."""


def _read(data: bytes, label: str, take):
    """(the stored model settings, ``take(archive, arrays)``) of the npz in ``data``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(entry.file_size for entry in archive.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise ValueError(f"it unpacks to {unpacked} bytes; a model's weights are far smaller")
        _headers(archive)  # before np.load reads any array
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            version = int(arrays[VERSION_KEY])
            if version != FORMAT_VERSION:
                raise OtherVersion(f"{label} is format version {version}; this program reads {FORMAT_VERSION}")
            return json.loads(str(arrays[CONFIG_KEY])), take(archive, arrays)
    except OtherVersion:
        raise
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile, LLMBError) as exc:
        raise LLMBError(f"{label} is corrupt or unreadable ({exc})") from None


def _layout(archive: zipfile.ZipFile, arrays) -> list:
    """[name, shape] of every stored tensor, read from the file's headers (no array loaded)."""
    stored = _headers(archive)
    layout = json.loads(str(arrays[LAYOUT_KEY]))
    for name, shape in layout:
        if not isinstance(name, str) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"the layout names {name!r} with shape {shape!r}")
    total = sum(math.prod(shape) for _, shape in layout)
    if total != math.prod(stored[WEIGHTS_KEY]):
        raise ValueError(f"the layout holds {total} numbers, the weights {math.prod(stored[WEIGHTS_KEY])}")
    return layout


def _headers(archive: zipfile.ZipFile) -> dict[str, tuple[int, ...]]:
    """The shape of each array of an npz, from its ``.npy`` header, once the header is found to
    claim no more bytes than the file stores (numpy allocates what a header claims)."""
    found = {}
    for entry in archive.infolist():
        with archive.open(entry) as f:
            version = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(f)
        if dtype.hasobject or math.prod(shape) * dtype.itemsize > entry.file_size:
            raise ValueError(f"its array {entry.filename!r} claims more than the file holds")
        found[entry.filename.removesuffix(".npy")] = tuple(shape)
    return found


def _state(archive: zipfile.ZipFile, arrays) -> dict[str, np.ndarray]:
    return _split(json.loads(str(arrays[LAYOUT_KEY])), arrays[WEIGHTS_KEY].astype(np.float32))


def _split(layout: list, flat: np.ndarray) -> dict[str, np.ndarray]:
    """The tensors ``layout`` ([name, shape] in order, checked by ``_layout``) names, as views of ``flat``."""
    sizes = [math.prod(shape) for _, shape in layout]
    starts = np.cumsum([0, *sizes])
    return {name: flat[start:start + size].reshape(shape) for (name, shape), start, size in zip(layout, starts, sizes)}
