"""The one exception type users see: its message is a single line saying what to fix, with any
password in it masked (messages reach terminals, logs and, through the viewer, strangers)."""

from __future__ import annotations

import re

_PASSWORD_IN_URI = re.compile(r"(?P<user>[a-zA-Z][\w+.-]*://[^/\s:@]*:)[^\s@]+@")  # may mask a port too
_SECRET_PARAMETER = re.compile(r"(?P<key>\b(?:password|passwd|pwd|token|secret)=)[^&\s]+", re.I)


class LLMBError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    def __init__(self, message: str):
        super().__init__(redact(" ".join(str(message).split())))


def redact(text: str) -> str:
    """``text`` with the passwords of URIs (``scheme://user:PASSWORD@host``) and secret query
    parameters masked."""
    return _SECRET_PARAMETER.sub(r"\g<key>***", _PASSWORD_IN_URI.sub(r"\g<user>***@", text))


def shown(value, limit: int = 60) -> str:
    """What somebody sent, quoted for a one-line message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def first_line(value) -> str:
    """The first line of an error's text (its type's name if it has none)."""
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
