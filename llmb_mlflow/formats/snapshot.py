"""The snapshot format: what the model looked like at one evaluation step.

Numpy only (the viewer reads snapshots without torch). A snapshot is one compressed ``.npz``
per step under the run's ``snapshots/`` artifact folder, loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, replace

import numpy as np

from ..errors import LLMBError
from .vocabulary import Vocabulary

FORMAT_VERSION = 2  # 2: a vocabulary kept once per run, embedding_ids; 1 is still written when neither is used
MAX_UNPACKED_BYTES = 64 * 2**20  # a large model's snapshot unpacks to well under 2 MB


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Arrays describing the model at ``step``.

    - ``vocab``: the tokens (``vocabulary.Vocabulary``); all ``*_ids`` index into it. A
      character vocabulary is stored in each snapshot, any other once per run: a snapshot of
      such a run read on its own has ``vocab`` None (and ``vocab_size``) until ``with_vocab``.
    - ``prompt`` + ``sample_ids`` (N,): the sample generated from a fixed prompt and seed.
    - ``topk_ids``/``topk_probs`` (N, K): for each sampled position the K most likely next
      tokens at temperature 1, most likely first; the sampled one is ``sample_ids[i]``.
    - ``embedding`` (P, 3): token embeddings projected on three axes kept stable over steps:
      of the tokens ``embedding_ids`` (P,), or of every token when that is None; (0, 3) for a
      model that shows none.
    - ``probe_ids`` (T,) and ``attention`` (L, H, T, T) float16: attention weights of every
      layer and head on a fixed probe text from the validation split; (0, 0, T, T) for a
      model that shows none.
    - ``weights``: the model's weights at this step, encoded by ``weights.encode`` (stored as a
      file of their own beside the snapshot; None when not kept).
    """

    step: int
    vocab: Vocabulary | None
    prompt: str
    sample_ids: np.ndarray
    topk_ids: np.ndarray
    topk_probs: np.ndarray
    embedding: np.ndarray
    probe_ids: np.ndarray
    attention: np.ndarray
    temperature: float = 1.0
    weights: bytes | None = None
    embedding_ids: np.ndarray | None = None
    vocab_size: int = 0  # taken from ``vocab`` when that is known

    def __post_init__(self):
        if isinstance(self.vocab, str):
            object.__setattr__(self, "vocab", Vocabulary(self.vocab))
        if self.vocab is not None:
            object.__setattr__(self, "vocab_size", len(self.vocab))

    @property
    def sample(self) -> str:
        return self.decode(self.sample_ids)

    @property
    def probe(self) -> str:
        return self.decode(self.probe_ids)

    @property
    def probe_tokens(self) -> list[str]:
        return [self.vocab[int(i)] for i in self.probe_ids]

    @property
    def n_layer(self) -> int:
        return self.attention.shape[0]

    @property
    def n_head(self) -> int:
        return self.attention.shape[1]

    @property
    def star_ids(self) -> np.ndarray:
        """The ids whose embedding is shown, in ``embedding``'s order."""
        if self.embedding_ids is not None:
            return np.asarray(self.embedding_ids)
        return np.arange(len(self.embedding))

    def decode(self, ids) -> str:
        return self.vocab.decode(ids)

    def with_vocab(self, vocab: Vocabulary) -> "Snapshot":
        """This snapshot with its run's vocabulary (ValueError if the sizes differ)."""
        if len(vocab) != self.vocab_size:
            raise ValueError(f"its run's vocabulary has {len(vocab)} tokens, the snapshot {self.vocab_size}")
        return replace(self, vocab=vocab)

    def check(self) -> "Snapshot":
        """Raise ValueError unless the arrays fit together."""
        n, v, t = len(self.sample_ids), self.vocab_size, len(self.probe_ids)
        shown = v if self.embedding_ids is None else len(self.embedding_ids)
        fits = {
            "vocab": v > 0,
            "sample_ids": self.sample_ids.ndim == 1,
            "topk_ids": self.topk_ids.ndim == 2 and self.topk_ids.shape[0] == n,
            "topk_probs": self.topk_probs.shape == self.topk_ids.shape,
            "embedding_ids": self.embedding_ids is None or self.embedding_ids.ndim == 1,
            "embedding": self.embedding.shape in ((shown, 3), (0, 3)),
            "attention": self.attention.ndim == 4 and self.attention.shape[2:] == (t, t),
        }
        bad = [name for name, ok in fits.items() if not ok]
        if bad:
            raise ValueError(f"inconsistent arrays: {', '.join(bad)}")
        for ids in (self.sample_ids, self.topk_ids, self.probe_ids, self.embedding_ids):
            if ids is not None and ids.size and (ids.min() < 0 or ids.max() >= v):
                raise ValueError("token id outside the vocabulary")
        return self


def encode(snap: Snapshot, whole: bool = False) -> bytes:
    """The snapshot file; ``whole`` also packs in its weights and any vocabulary, so that it
    needs nothing else (a run's unsent data)."""
    buffer = io.BytesIO()
    packed = {"weights": np.frombuffer(snap.weights, dtype=np.uint8)} if whole and snap.weights else {}
    inline = snap.vocab is not None and snap.vocab.is_chars
    coded = inline and snap.vocab.chars.endswith("\x00")  # a str array drops trailing NULs
    if coded:
        packed["vocab_codes"] = np.array([ord(c) for c in snap.vocab.chars], dtype=np.uint32)
    elif inline:
        packed["vocab"] = np.str_(snap.vocab.chars)
    else:
        packed["vocab_size"] = np.int64(snap.vocab_size)
        if whole and snap.vocab is not None:  # UTF-8 bytes: a str array would drop a last token's trailing NULs
            encoded = [token.encode("utf-8", "surrogatepass") for token in snap.vocab]
            packed["vocab_tokens"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            packed["vocab_ends"] = np.cumsum([len(b) for b in encoded], dtype=np.int64)
    if snap.embedding_ids is not None:
        packed["embedding_ids"] = _ids(snap.embedding_ids, snap.vocab_size)
    np.savez_compressed(
        buffer,
        **packed,
        format_version=np.int32(1 if inline and not coded and snap.embedding_ids is None else FORMAT_VERSION),
        step=np.int64(snap.step),
        prompt=np.str_(snap.prompt),
        temperature=np.float32(snap.temperature),
        sample_ids=_ids(snap.sample_ids, snap.vocab_size),
        topk_ids=_ids(snap.topk_ids, snap.vocab_size),
        topk_probs=np.asarray(snap.topk_probs, dtype=np.float16),
        embedding=np.asarray(snap.embedding, dtype=np.float32),
        probe_ids=_ids(snap.probe_ids, snap.vocab_size),
        attention=np.asarray(snap.attention, dtype=np.float16),
    )
    return buffer.getvalue()


def decode(data: bytes, label: str = "snapshot", vocab: Vocabulary | None = None) -> Snapshot:
    """Parse a snapshot; anything malformed becomes a one-line LLMBError naming ``label``.
    ``vocab``: its run's, for a snapshot that does not carry its own (else its ``vocab`` stays None)."""
    try:
        unpacked = sum(entry.file_size for entry in zipfile.ZipFile(io.BytesIO(data)).infolist())
        if unpacked > MAX_UNPACKED_BYTES:  # deflate packs a thousand zeros into a byte
            raise ValueError(f"it unpacks to {unpacked} bytes; a snapshot is far smaller")
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            version = int(arrays["format_version"])
            if version > FORMAT_VERSION:
                raise ValueError(f"format version {version} is newer than this program's")
            files = arrays.files
            snap = Snapshot(
                step=int(arrays["step"]),
                vocab=str(arrays["vocab"]) if "vocab" in files else _chars(arrays["vocab_codes"])
                if "vocab_codes" in files else None,
                vocab_size=0 if "vocab" in files or "vocab_codes" in files else int(arrays["vocab_size"]),
                prompt=str(arrays["prompt"]),
                temperature=float(arrays["temperature"]),
                sample_ids=arrays["sample_ids"],
                topk_ids=arrays["topk_ids"],
                topk_probs=arrays["topk_probs"],
                embedding=arrays["embedding"],
                probe_ids=arrays["probe_ids"],
                attention=arrays["attention"],
                weights=arrays["weights"].tobytes() if "weights" in files else None,
                embedding_ids=arrays["embedding_ids"] if "embedding_ids" in files else None,
            )
            if "vocab_tokens" in files:
                vocab = _split(arrays["vocab_tokens"].tobytes(), arrays["vocab_ends"])
            return (snap if snap.vocab is not None or vocab is None else snap.with_vocab(vocab)).check()
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise LLMBError(f"{label} is corrupt or unreadable ({exc})") from None


def _chars(codes: np.ndarray) -> str:
    if codes.ndim != 1 or codes.dtype != np.uint32 or (codes.size and codes.max() > 0x10FFFF):
        raise ValueError("vocab_codes are not characters")
    return "".join(map(chr, codes.tolist()))


def _split(data: bytes, ends: np.ndarray) -> Vocabulary:
    if ends.ndim != 1 or ends.dtype.kind not in "iu" or (
            ends.size and (np.any(np.diff(ends) < 0) or ends[0] < 0 or ends[-1] != len(data))):
        raise ValueError("vocab_ends does not cut vocab_tokens")
    starts = [0, *ends[:-1].tolist()]
    return Vocabulary(data[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends.tolist()))


def _ids(ids, vocab_size: int) -> np.ndarray:
    return np.asarray(ids, dtype=np.uint16 if vocab_size <= 2**16 else np.int32)
