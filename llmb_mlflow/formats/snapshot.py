"""The snapshot format: what the model looked like at one evaluation step.

Numpy only (the viewer reads snapshots without torch). A snapshot is one compressed ``.npz``
per step under the run's ``snapshots/`` artifact folder, loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

from ..errors import LLMBError

FORMAT_VERSION = 1
MAX_UNPACKED_BYTES = 64 * 2**20  # a large model's snapshot unpacks to well under 2 MB


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Arrays describing the model at ``step``.

    - ``vocab``: the characters, id order; all ``*_ids`` index into it.
    - ``prompt`` + ``sample_ids`` (N,): the sample generated from a fixed prompt and seed.
    - ``topk_ids``/``topk_probs`` (N, K): for each sampled position the K most likely next
      characters at temperature 1, most likely first; the sampled one is ``sample_ids[i]``.
    - ``embedding`` (V, 3): token embeddings projected on three axes kept stable over steps;
      (0, 3) for a model that shows none.
    - ``probe_ids`` (T,) and ``attention`` (L, H, T, T) float16: attention weights of every
      layer and head on a fixed probe text from the validation split; (0, 0, T, T) for a
      model that shows none.
    - ``weights``: the model's weights at this step, encoded by ``weights.encode`` (stored as a
      file of their own beside the snapshot; None when not kept).
    """

    step: int
    vocab: str
    prompt: str
    sample_ids: np.ndarray
    topk_ids: np.ndarray
    topk_probs: np.ndarray
    embedding: np.ndarray
    probe_ids: np.ndarray
    attention: np.ndarray
    temperature: float = 1.0
    weights: bytes | None = None

    @property
    def sample(self) -> str:
        return self.decode(self.sample_ids)

    @property
    def probe(self) -> str:
        return self.decode(self.probe_ids)

    @property
    def n_layer(self) -> int:
        return self.attention.shape[0]

    @property
    def n_head(self) -> int:
        return self.attention.shape[1]

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def check(self) -> "Snapshot":
        """Raise ValueError unless the arrays fit together."""
        n, v = len(self.sample_ids), len(self.vocab)
        t = len(self.probe_ids)
        fits = {
            "sample_ids": self.sample_ids.ndim == 1,
            "topk_ids": self.topk_ids.ndim == 2 and self.topk_ids.shape[0] == n,
            "topk_probs": self.topk_probs.shape == self.topk_ids.shape,
            "embedding": self.embedding.shape in ((v, 3), (0, 3)),
            "attention": self.attention.ndim == 4 and self.attention.shape[2:] == (t, t),
        }
        bad = [name for name, ok in fits.items() if not ok]
        if bad:
            raise ValueError(f"inconsistent arrays: {', '.join(bad)}")
        for ids in (self.sample_ids, self.topk_ids, self.probe_ids):
            if ids.size and (ids.min() < 0 or ids.max() >= v):
                raise ValueError("token id outside the vocabulary")
        return self


def encode(snap: Snapshot, with_weights: bool = False) -> bytes:
    """The snapshot file; ``with_weights`` also packs its weights in (for a run's unsent data)."""
    buffer = io.BytesIO()
    packed = {"weights": np.frombuffer(snap.weights, dtype=np.uint8)} if with_weights and snap.weights else {}
    np.savez_compressed(
        buffer,
        **packed,
        format_version=np.int32(FORMAT_VERSION),
        step=np.int64(snap.step),
        vocab=np.str_(snap.vocab),
        prompt=np.str_(snap.prompt),
        temperature=np.float32(snap.temperature),
        sample_ids=_ids(snap.sample_ids, len(snap.vocab)),
        topk_ids=_ids(snap.topk_ids, len(snap.vocab)),
        topk_probs=np.asarray(snap.topk_probs, dtype=np.float16),
        embedding=np.asarray(snap.embedding, dtype=np.float32),
        probe_ids=_ids(snap.probe_ids, len(snap.vocab)),
        attention=np.asarray(snap.attention, dtype=np.float16),
    )
    return buffer.getvalue()


def decode(data: bytes, label: str = "snapshot") -> Snapshot:
    """Parse a snapshot; anything malformed becomes a one-line LLMBError naming ``label``."""
    try:
        unpacked = sum(entry.file_size for entry in zipfile.ZipFile(io.BytesIO(data)).infolist())
        if unpacked > MAX_UNPACKED_BYTES:  # deflate packs a thousand zeros into a byte
            raise ValueError(f"it unpacks to {unpacked} bytes; a snapshot is far smaller")
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            version = int(arrays["format_version"])
            if version > FORMAT_VERSION:
                raise ValueError(f"format version {version} is newer than this program's")
            return Snapshot(
                step=int(arrays["step"]),
                vocab=str(arrays["vocab"]),
                prompt=str(arrays["prompt"]),
                temperature=float(arrays["temperature"]),
                sample_ids=arrays["sample_ids"],
                topk_ids=arrays["topk_ids"],
                topk_probs=arrays["topk_probs"],
                embedding=arrays["embedding"],
                probe_ids=arrays["probe_ids"],
                attention=arrays["attention"],
                weights=arrays["weights"].tobytes() if "weights" in arrays.files else None,
            ).check()
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise LLMBError(f"{label} is corrupt or unreadable ({exc})") from None


def _ids(ids, vocab_size: int) -> np.ndarray:
    return np.asarray(ids, dtype=np.uint16 if vocab_size <= 2**16 else np.int32)
