"""A model's weights at one evaluation step, so the playground can use the model as it was then.

One compressed ``.npz`` per step under the run's ``weights/`` artifact folder, beside the step's
snapshot: the model's shape as JSON and every tensor in float16 (half the bytes of float32; the
playground's top-10 probabilities stay within 0.001 of full precision). Numpy only, loaded with
``allow_pickle=False``: reading it never runs code from the file.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import fields

import numpy as np

from .config import ModelConfig
from .errors import LLMBError

FORMAT_VERSION = 1
CONFIG_KEY, VERSION_KEY = "model_config", "format_version"
MAX_UNPACKED_BYTES = 64 * 2**20  # the largest preset's weights unpack to under 2 MB


def encode(state: dict[str, np.ndarray], model_config: dict) -> bytes:
    """``state``: a model's ``state_dict`` as arrays; ``model_config``: its ModelConfig fields."""
    buffer = io.BytesIO()
    arrays = {name: np.asarray(value, dtype=np.float16) for name, value in state.items()}
    np.savez_compressed(buffer, **{VERSION_KEY: np.int32(FORMAT_VERSION),
                                   CONFIG_KEY: np.str_(json.dumps(model_config))}, **arrays)
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
            state = {name: arrays[name].astype(np.float32) for name in arrays.files
                     if name not in (VERSION_KEY, CONFIG_KEY)}
        return config, state
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile, LLMBError) as exc:
        raise LLMBError(f"{label} is corrupt or unreadable ({exc})") from None
