"""A model's weights at one evaluation step, so the playground can use the model as it was then.

One ``.npz`` per step under the run's ``weights/`` artifact folder, beside the step's
snapshot: the model's shape as JSON, every tensor's name and shape as JSON, and all tensors one
after another in one float16 array (half the bytes of float32; the playground's top-10
probabilities stay within 0.001 of full precision). One array rather than one per tensor: it
decodes in a quarter of the time, which a playground swapping steps waits for. Stored, not
deflated: deflate shrinks float16 weights by under 8 % and took 50–90 ms of every evaluation
on the training's own path. Format 1 (an array per tensor) and deflated files are still read.
Numpy only, loaded with ``allow_pickle=False``: reading it never runs code from the file.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import fields

import numpy as np

from .config import ModelConfig
from .errors import LLMBError

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


def decode(data: bytes, label: str = "weights") -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """The model's shape and its weights (float32); anything malformed is a one-line LLMBError."""
    try:
        unpacked = sum(entry.file_size for entry in zipfile.ZipFile(io.BytesIO(data)).infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise ValueError(f"it unpacks to {unpacked} bytes; a model's weights are far smaller")
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if int(arrays[VERSION_KEY]) > FORMAT_VERSION:
                raise ValueError(f"format version {int(arrays[VERSION_KEY])} is newer than this program's")
            given = json.loads(str(arrays[CONFIG_KEY]))
            known = {f.name for f in fields(ModelConfig)}
            config = ModelConfig(**{k: v for k, v in given.items() if k in known}).validate()
            if int(arrays[VERSION_KEY]) == 1:  # an array per tensor
                state = {name: arrays[name].astype(np.float32) for name in arrays.files
                         if name not in (VERSION_KEY, CONFIG_KEY)}
            else:
                state = _split(json.loads(str(arrays[LAYOUT_KEY])), arrays[WEIGHTS_KEY].astype(np.float32))
        return config, state
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile, LLMBError) as exc:
        raise LLMBError(f"{label} is corrupt or unreadable ({exc})") from None


def _split(layout: list, flat: np.ndarray) -> dict[str, np.ndarray]:
    """The tensors ``layout`` ([name, shape] in order) names, as views of ``flat``."""
    for name, shape in layout:
        if not isinstance(name, str) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"the layout names {name!r} with shape {shape!r}")
    sizes = [int(np.prod(shape, dtype=np.int64)) for _, shape in layout]
    if sum(sizes) != flat.size:
        raise ValueError(f"the layout holds {sum(sizes)} numbers, the weights {flat.size}")
    starts = np.cumsum([0, *sizes])
    return {name: flat[start:start + size].reshape(shape) for (name, shape), start, size in zip(layout, starts, sizes)}
