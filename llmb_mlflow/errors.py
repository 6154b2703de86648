"""The one exception type users see: its message is a single line saying what to fix."""

from __future__ import annotations


class LLMBError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def shown(value, limit: int = 60) -> str:
    """What somebody sent, quoted for a one-line message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
