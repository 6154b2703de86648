"""A model's vocabulary: its tokens' strings in id order, and how a token is labelled on screen.

A character model's vocabulary is its characters (one per id, all distinct) and travels in each
snapshot, as it always has. Any other vocabulary (words, BPE pieces) is stored once per run as
JSON (``VOCABULARY_FILE``); its snapshots keep only ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property

from ..errors import LLMBError

FORMAT_VERSION = 1
MAX_BYTES = 32 * 2**20  # GPT-2's 50,257 tokens take under 1 MB
LABEL_CHARS = 8  # a longer token is shortened on screen, its whole string on hover
SHOWN = {"\n": "⏎", " ": "␣", "\t": "⇥", "\r": "␍"}


class Vocabulary(Sequence):
    """The token strings of ids 0 … len-1 (a token may stand for several ids: byte-level BPE
    decodes lone bytes of a character to the same replacement character)."""

    def __init__(self, tokens):
        self.tokens = tuple(tokens)
        for i, token in enumerate(self.tokens):
            if not isinstance(token, str):
                raise ValueError(f"token {i} is a {type(token).__name__}, not a string")

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i):
        return self.tokens[i]

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and other.tokens == self.tokens

    def __hash__(self) -> int:
        return hash(self.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    @cached_property
    def is_chars(self) -> bool:
        """One character per id, all distinct: stored inline in each snapshot."""
        return all(len(t) == 1 for t in self.tokens) and len(set(self.tokens)) == len(self.tokens)

    @cached_property
    def chars(self) -> str:
        """A character vocabulary as one string (as snapshots store it)."""
        if not self.is_chars:
            raise ValueError("not a character vocabulary")
        return "".join(self.tokens)

    def decode(self, ids) -> str:
        return "".join(self.tokens[int(i)] for i in ids)

    def labels(self, ids, limit: int = LABEL_CHARS) -> list[str]:
        return [label(self.tokens[int(i)], limit) for i in ids]

    def to_json(self) -> str:
        return json.dumps({"format_version": FORMAT_VERSION, "tokens": list(self.tokens)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: bytes | str, label_: str = "vocabulary") -> "Vocabulary":
        """Parse a stored vocabulary; anything malformed is a one-line LLMBError naming ``label_``."""
        try:
            if len(data) > MAX_BYTES:
                raise ValueError(f"it is {len(data)} bytes, more than {MAX_BYTES}")
            found = json.loads(data)
            version = found["format_version"]
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise ValueError(f"format version {version!r} is not one this program reads")
            if not isinstance(found["tokens"], list) or not found["tokens"]:
                raise ValueError("it has no tokens")
            return cls(found["tokens"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise LLMBError(f"{label_} is corrupt or unreadable ({exc})") from None


def label(token: str, limit: int = LABEL_CHARS) -> str:
    """``token`` as drawn: whitespace and control characters made visible, at most ``limit``
    characters (the last one an ellipsis when shortened); an empty token is ∅."""
    if not token:
        return "∅"
    shown = "".join(SHOWN.get(c, c if c.isprintable() else ascii(c)[1:-1]) for c in token)
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"
