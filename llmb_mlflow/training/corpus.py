"""Corpora (bundled or any UTF-8 text file), the character tokenizer and the train/val split.

Torch-free: token ids are numpy arrays; the trainer moves them to a device.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import LLMBError
from ..formats.vocabulary import Vocabulary
from .upload_folder import read_kept

BUNDLED = ("shakespeare", "alice", "turmoil")
MAX_CORPUS_BYTES = 20 * 1024 * 1024
VAL_FRACTION = 0.1


@dataclass(frozen=True)
class Corpus:
    name: str
    text: str
    source: str = ""  # where it came from: the bundled file or the file's path
    bundled: bool = False

    @property
    def digest(self) -> str:
        """A short hash of the text (MLflow shows a dataset's digest beside its name)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:8]


class CharTokenizer:
    """Maps each distinct character of a corpus to an id, in sorted character order."""

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary characters must be distinct")
        self.chars = chars
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.chars)

    def unknown_chars(self, text: str) -> list[str]:
        return sorted(set(text) - set(self._ids))

    def encode(self, text: str) -> np.ndarray:
        missing = self.unknown_chars(text)
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10])
            raise LLMBError(f"characters not in the model's vocabulary: {shown}")
        dtype = np.uint16 if self.vocab_size <= 2**16 else np.int32
        return np.fromiter((self._ids[c] for c in text), dtype=dtype, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


@dataclass(frozen=True)
class Dataset:
    name: str
    tokenizer: CharTokenizer
    train_ids: np.ndarray
    val_ids: np.ndarray
    val_text: str
    digest: str = ""
    source: str = ""
    bundled: bool = False

    def profile(self) -> dict[str, int]:
        return {"characters": len(self.train_ids) + len(self.val_ids),
                "vocabulary": self.tokenizer.vocab_size,
                "train_characters": len(self.train_ids), "val_characters": len(self.val_ids)}


def load_corpus(spec: str) -> Corpus:
    """A bundled corpus by name, or a UTF-8 text file by path; text is newline-normalised."""
    if spec in BUNDLED:
        package_file = resources.files("llmb_mlflow") / "corpora" / f"{spec}.txt.gz"
        text = normalise(gzip.decompress(package_file.read_bytes()).decode("utf-8"))
        return Corpus(spec, text, f"llmb_mlflow/corpora/{spec}.txt.gz", bundled=True)
    path = Path(spec).expanduser()
    kept = read_kept(path, MAX_CORPUS_BYTES)
    if kept is not None:
        return Corpus(path.name, decode_corpus_bytes(kept, spec), str(path.absolute()))
    if not path.exists():
        if path.suffix or "/" in spec or "\\" in spec:
            raise LLMBError(f"corpus file not found: {spec}")
        raise LLMBError(f"unknown dataset {spec!r}; bundled ones: {', '.join(BUNDLED)} (or give a path to a .txt file)")
    if path.is_dir():
        raise LLMBError(f"corpus path is a directory, not a text file: {spec}")
    try:
        size = path.stat().st_size
        if size > MAX_CORPUS_BYTES:
            raise LLMBError(
                f"corpus file is {size / 2**20:.1f} MB; the limit is {MAX_CORPUS_BYTES // 2**20} MB: {spec}"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise LLMBError(f"cannot read corpus file {spec}: {exc.strerror or exc}") from None
    return Corpus(path.name, decode_corpus_bytes(raw, spec), str(path.resolve()))


def decode_corpus_bytes(raw: bytes, label: str) -> str:
    if not raw.strip():
        raise LLMBError(f"corpus is empty: {label}")
    if b"\x00" in raw:
        raise LLMBError(f"corpus looks like a binary file (it contains NUL bytes): {label}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LLMBError(
            f"corpus is not valid UTF-8 text (bad byte at offset {exc.start}): {label}"
        ) from None
    return normalise(text)


def normalise(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def prepare_dataset(corpus: Corpus, block_size: int, tokenizer: CharTokenizer | None = None) -> Dataset:
    """Tokenise and split 90/10 (no shuffling); both splits must hold a full context plus one.
    A given ``tokenizer`` (a checkpoint's vocabulary) must cover every character."""
    if tokenizer is None:
        tokenizer = CharTokenizer.from_text(corpus.text)
    elif tokenizer.unknown_chars(corpus.text):
        shown = ", ".join(repr(c) for c in tokenizer.unknown_chars(corpus.text)[:10])
        raise LLMBError(f"corpus {corpus.name!r} has characters the model does not know: {shown}")
    n_train = int(len(corpus.text) * (1 - VAL_FRACTION))
    n_val = len(corpus.text) - n_train
    needed = block_size + 2
    if min(n_train, n_val) < needed:
        raise LLMBError(
            f"corpus {corpus.name!r} is too short: {len(corpus.text)} characters, but a context of "
            f"{block_size} needs at least {needed * 10} (so the 10% validation split holds {needed})"
        )
    ids = tokenizer.encode(corpus.text)
    return Dataset(
        name=corpus.name,
        tokenizer=tokenizer,
        train_ids=ids[:n_train],
        val_ids=ids[n_train:],
        val_text=corpus.text[n_train:],
        digest=corpus.digest,
        source=corpus.source,
        bundled=corpus.bundled,
    )
