"""How a command that serves until stopped (``llmb dash``, ``llmb demo``) takes SIGINT (Ctrl-C),
SIGTERM and SIGHUP (its terminal closed): with its own handlers, whatever it inherited (a script
may have ignored SIGINT). The first of these signals raises ``Interrupted`` where the main
thread is, which ends waitress's loop as Ctrl-C does; later ones, while the command cleans up,
call ``on_repeat``."""

from __future__ import annotations

import signal
from typing import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt, so that waitress's loop ends on it and no ``except Exception``
    swallows it."""


class StopSignals:
    """``with StopSignals() as signals:`` the block ends at the first stop signal (the
    ``Interrupted`` it raises goes no further); ``signals.received`` is that signal, or None."""

    def __init__(self, on_repeat: Callable[[], None] = lambda: None):
        self.received: int | None = None
        self.on_repeat = on_repeat
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
        self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return kind is Interrupted

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            self.on_repeat()
            return
        self.received = signum
        raise Interrupted
