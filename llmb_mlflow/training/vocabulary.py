"""The tokenizer of a model trained elsewhere, from what its user has at hand: the tokens in id
order (a str of characters, or a list of strings), nanoGPT's ``itos`` dict, or a tokenizer
object with ``decode`` (and, best, ``encode``). One character per id gives the ``CharTokenizer``
that ``llmb train`` uses; anything else a ``TokenTokenizer``."""

from __future__ import annotations

import numpy as np

from .corpus import CharTokenizer
from ..errors import LLMBError, shown
from ..formats.vocabulary import Vocabulary

KINDS = "a str of characters or a list of token strings in id order, a dict of id to token (nanoGPT's itos), " \
        "or an object with decode(ids)"


class TokenTokenizer:
    """Tokens of any length. Text becomes ids through the user's own ``encode`` when there is
    one, else by taking the longest token that matches at each position (exact for a word
    vocabulary, close to what a BPE tokenizer does)."""

    def __init__(self, vocabulary: Vocabulary, encode=None):
        self.vocabulary, self._encode = vocabulary, encode
        self._ids: dict[str, int] = {}
        for i, token in enumerate(vocabulary):
            self._ids.setdefault(token, i)
        self._lengths = sorted({len(token) for token in self._ids}, reverse=True)  # tried longest first
        self._chars = set("".join(self._ids))

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str) -> np.ndarray:
        if self._encode is None:
            return np.asarray(self._longest_match(text), dtype=np.int64)
        try:
            ids = self._encode(text)
        except Exception as exc:  # the user's own code
            raise LLMBError(f"the tokenizer's encode failed on {shown(text)} ({type(exc).__name__})") from None
        ids = getattr(ids, "ids", ids)  # a Hugging Face tokenizers Encoding
        try:
            ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            raise LLMBError(f"the tokenizer's encode gave {shown(ids)}, not a list of ids") from None
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise LLMBError(f"the tokenizer's encode gave ids outside 0 to {self.vocab_size - 1}")
        return ids

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of ``text`` no token covers (none when the user's encode reads it)."""
        if self._encode is None:
            unread = self._cut(text)[1]
            return [] if unread is None else sorted(set(text) - self._chars) or [text[unread]]
        try:
            self.encode(text)
        except LLMBError:
            return sorted(set(text) - self._chars) or [text[:1]]
        return []

    def decode(self, ids) -> str:
        return self.vocabulary.decode(ids)

    def _longest_match(self, text: str) -> list[int]:
        ids, unread = self._cut(text)
        if unread is not None:
            raise LLMBError(f"characters not in the model's vocabulary: {text[unread]!r}")
        return ids

    def _cut(self, text: str) -> tuple[list[int], int | None]:
        """The ids of the longest token at each place, and where no token matches (None: nowhere)."""
        ids, at = [], 0
        while at < len(text):
            for length in self._lengths:
                found = self._ids.get(text[at:at + length]) if at + length <= len(text) else None
                if found is not None:
                    ids.append(found)
                    at += length
                    break
            else:
                return ids, at
        return ids, None


def tokenizer_of(tokenizer) -> CharTokenizer | TokenTokenizer:
    """``tokenizer`` as snapshots read it; a one-line error naming ``tokenizer=`` for anything
    that does not give one string per id."""
    if isinstance(tokenizer, (CharTokenizer, TokenTokenizer)):
        return tokenizer
    tokens = _tokens(tokenizer)
    if not tokens:
        raise LLMBError("tokenizer= has no tokens")
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise LLMBError(f"tokenizer=: id {i} is {shown(token)}, not a string")
    vocabulary = Vocabulary(tokens)
    encode = None if isinstance(tokenizer, (str, list, tuple, dict)) else getattr(tokenizer, "encode", None)
    if vocabulary.is_chars and not callable(encode):
        return CharTokenizer(vocabulary.chars)
    if not callable(encode) and len(set(tokens)) < len(tokens):
        twice = next(t for i, t in enumerate(tokens) if t in tokens[:i])
        raise LLMBError(f"tokenizer=: {shown(twice)} stands for more than one id; give an object whose "
                        "encode(text) says which")
    return TokenTokenizer(vocabulary, encode if callable(encode) else None)


def _tokens(tokenizer) -> list:
    if isinstance(tokenizer, str):
        return list(tokenizer)
    if isinstance(tokenizer, (list, tuple)):
        return list(tokenizer)
    if isinstance(tokenizer, dict):
        ids = sorted(tokenizer, key=lambda i: (not isinstance(i, int), i if isinstance(i, int) else 0))
        if ids != list(range(len(ids))):
            raise LLMBError(f"tokenizer=: a dict's keys must be the ids 0 to {len(ids) - 1}")
        return [tokenizer[i] for i in ids]
    if callable(getattr(tokenizer, "decode", None)):
        size = next((getattr(tokenizer, name) for name in ("vocab_size", "n_vocab")
                     if isinstance(getattr(tokenizer, name, None), int)), None)
        if size is None:
            raise LLMBError("tokenizer=: an object with decode(ids) also needs vocab_size (or n_vocab)")
        try:
            return [tokenizer.decode([i]) for i in range(size)]
        except Exception as exc:  # the user's own code: whatever it raises is theirs to read
            raise LLMBError(f"tokenizer=: its decode could not decode an id ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else 'no message'})") from None
    raise LLMBError(f"tokenizer= must be {KINDS}; got a {type(tokenizer).__name__}")
