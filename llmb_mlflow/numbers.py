"""Whole numbers read from outside: a tag or param someone wrote to the store, an environment
variable someone set. Anyone may have written anything there."""

from __future__ import annotations

import os

from .errors import LLMBError, shown


def whole_number(value) -> int | None:
    """``value`` as a whole number if it is the digits of one (at most 15, ASCII), else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 16:
        return int(value)
    return None


def env_count(name: str, default: int, unit: str = "") -> int:
    """The whole number of at least 1 in ``$name`` (``_`` allowed between digits), else
    ``default``; anything else is an LLMBError naming the variable and what it holds."""
    given = os.environ.get(name, "").strip()
    if not given:
        return default
    count = whole_number(given.replace("_", ""))
    if not count:
        raise LLMBError(f"{name} must be a whole number{' of ' + unit if unit else ''}, at least 1; "
                        f"got {shown(os.environ[name])}")
    return count
