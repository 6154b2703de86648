"""The vocabulary of a model trained elsewhere, from what its user has at hand: the characters
in id order (a str or a list), nanoGPT's ``itos`` dict, or a tokenizer object with ``decode``."""

from __future__ import annotations

from .corpus import CharTokenizer
from ..errors import LLMBError, shown

KINDS = "a str or list of the characters in id order, a dict of id to character (nanoGPT's itos), " \
        "or an object with decode(ids)"


def char_tokenizer(tokenizer) -> CharTokenizer:
    """``tokenizer`` as the character vocabulary snapshots store; a one-line error naming
    ``tokenizer=`` for anything else."""
    if isinstance(tokenizer, CharTokenizer):
        return tokenizer
    tokens = _tokens(tokenizer)
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or len(token) != 1:
            raise LLMBError(f"tokenizer=: id {i} is {shown(token)}; each id must stand for one character "
                            "(tokens of several characters are not recorded yet)")
    try:
        return CharTokenizer("".join(tokens))
    except ValueError:
        twice = next(t for i, t in enumerate(tokens) if t in tokens[:i])
        raise LLMBError(f"tokenizer=: {shown(twice)} stands for more than one id") from None


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
        return [tokenizer.decode([i]) for i in range(size)]
    raise LLMBError(f"tokenizer= must be {KINDS}; got a {type(tokenizer).__name__}")
