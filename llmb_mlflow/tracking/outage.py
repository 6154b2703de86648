"""What a training's console shows of a store that refuses writes: one line when the condition
starts (the store's disk is full, or writes fail for another reason), one when it clears, and
the end's summary (``session``), never a line per failed write.

The writer (``mlflow_tracker``) already keeps every refused write and counts it; MLflow's own
log of the same failure is one line (``store.logs``).
"""

from __future__ import annotations

from .spill import SPILL_BYTES

DISK_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded")


def condition(error: str | None) -> str | None:
    """What a write failure (the writer's one line) says about the store; None: no failure."""
    if error is None:
        return None
    if any(text in error.lower() for text in DISK_FULL):
        return "the tracking store's disk is full"
    return "writes to the tracking store fail"


class StoreConditions:
    """Says each change of the store's condition once, through ``say``."""

    def __init__(self, say):
        self.say, self.shown = say, None

    def update(self, error: str | None) -> None:
        now = condition(error)
        if now == self.shown:
            return
        if now:
            self.say(f"{now[0].upper()}{now[1:]} ({error}): the training goes on, keeping what it "
                     f"logs (on disk past {SPILL_BYTES // 2**20} MB), and retries.")
        else:
            self.say("The tracking store takes writes again: what was kept is being sent.")
        self.shown = now
