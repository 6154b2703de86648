"""What a training's console shows of a store that refuses writes: one line when the condition
starts (the store's disk is full, or writes fail for another reason), one when it clears, and
the end's summary (``session``), never a line per failed write.

The writer (``mlflow_tracker``) already keeps every refused write and counts it, so in every
process of ours (``store.client``) MLflow's own report of the same failure is dropped and what
it still logs is one line: its sqlite store logs every ``OperationalError`` (a full disk among
them) with two tracebacks before raising it to us.
"""

from __future__ import annotations

import logging

from .errors import first_line
from .spill import SPILL_BYTES

DISK_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded")
DB_ERROR_LOGGER = "mlflow.store.db.utils"
DB_ERROR_MESSAGE = "SQLAlchemy database error"


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


def quiet_store_logging() -> None:
    """Once MLflow is imported (``store.client`` calls this): drop MLflow's report of a database
    error that it raises to us, and keep whatever else it logs to one line."""
    logging.getLogger(DB_ERROR_LOGGER).addFilter(_drop_raised_db_errors)
    for name in ("mlflow", "sqlalchemy.engine", "alembic"):
        for handler in logging.getLogger(name).handlers:
            if _one_line not in handler.filters:
                handler.addFilter(_one_line)


def _drop_raised_db_errors(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(DB_ERROR_MESSAGE)


def _one_line(record: logging.LogRecord) -> bool:
    record.msg, record.args = first_line(record.getMessage()), None
    if record.exc_info and record.exc_info[1] is not None:
        record.msg += f" ({type(record.exc_info[1]).__name__}: {first_line(record.exc_info[1])})"
    record.exc_info = record.exc_text = record.stack_info = None
    return True
