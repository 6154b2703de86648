"""MLflow's own logs of a store failure, in every process of ours: the writer (``tracking``)
already keeps every refused write and counts it, so MLflow's report of a database error it
raises to us is dropped, and what it still logs is one line. Its sqlite store logs every
``OperationalError`` (a full disk among them) with two tracebacks before raising it."""

from __future__ import annotations

import logging

from ..errors import first_line

DB_ERROR_LOGGER = "mlflow.store.db.utils"
DB_ERROR_MESSAGE = "SQLAlchemy database error"


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
