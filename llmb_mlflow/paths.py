"""Where LLMBreaker keeps files of its own between runs (uploaded corpora, unsent data)."""

from __future__ import annotations

import os
from pathlib import Path


def user_data_dir(name: str, env_var: str) -> Path:
    """``$env_var`` if set, else ``$XDG_DATA_HOME/llmbreaker/name`` (``~/.local/share/...``)."""
    base = os.environ.get(env_var) or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "llmbreaker", name)
    return Path(base)
