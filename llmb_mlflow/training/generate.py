"""Text generation from a trained MicroGPT."""

from __future__ import annotations

from .config import SettingError
from ..errors import LLMBError
from .sampling import sample


def generate(model, tokenizer, prompt: str, max_new_tokens: int = 200,
             temperature: float = 0.8, seed: int = 0) -> str:
    """The continuation of ``prompt``; characters outside the vocabulary are an LLMBError."""
    if not prompt:
        raise LLMBError("the prompt is empty; give at least one character")
    if max_new_tokens < 1 or max_new_tokens > 100_000:
        raise SettingError("max_new_tokens", f"must be between 1 and 100000, got {max_new_tokens}")
    if not 0 < temperature <= 10:
        raise SettingError("temperature", f"must be in (0, 10], got {temperature}")
    unknown = tokenizer.unknown_chars(prompt)
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:10])
        raise LLMBError(f"the prompt has characters outside the model's vocabulary: {shown}")
    ids, _ = sample(model, [int(i) for i in tokenizer.encode(prompt)], max_new_tokens,
                    temperature, seed)
    return tokenizer.decode(ids)
