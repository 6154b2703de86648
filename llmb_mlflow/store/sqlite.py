"""Readying a sqlite tracking store before a process first opens it, while other programs
(``mlflow ui``, a script) may be creating the same new store at that moment.

MLflow creates a store's tables in place, one migration after another, with no lock other
programs honour; on sqlite each schema change commits on its own, so two programs migrating one
new file break each other and can leave it half-made for good. Ours therefore never migrates a
store another program may be making: a new one is made in a file of its own and linked into
place only if the name is still free, so others see it whole or not at all; one that is already
there is waited for until whoever makes it is done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from . import compat as mlflow_compat
from ..errors import LLMBError

WAIT_SECONDS = 60.0  # MLflow's migrations of a new store take seconds
QUIET_SECONDS = 10.0  # unchanged this long: nobody is making it
POLL_SECONDS = 0.2
LEFTOVER_PREFIX = "_alembic_tmp_"
NO_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK)


def ready(uri: str, path: str) -> None:
    """Make sure the store at ``path`` is whole, or that nobody is making it, before MLflow
    opens it here (MLflow then upgrades an older store, or says why it cannot)."""
    if not os.path.exists(path) and _create(path):
        return
    _wait_until_made(uri, path)


def _create(path: str) -> bool:
    """Make the new store beside ``path`` and link it there; False if the name was taken
    meanwhile (or this file system has no links: MLflow then makes it in place, as before)."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, made = tempfile.mkstemp(prefix=".llmb-new-", suffix=".db", dir=folder)
    os.close(handle)
    try:
        mlflow_compat.create_sqlite_store(f"sqlite:///{made}")
        os.link(made, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in NO_LINKS:
            return False
        raise
    finally:
        for leftover in (made, made + "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _wait_until_made(uri: str, path: str) -> None:
    head = mlflow_compat.schema_revision()
    now = time.monotonic()
    deadline, seen, quiet_since = now + WAIT_SECONDS, None, now
    while os.path.exists(path):
        state = schema_state(path)
        if state is not None and state[0] == head and state[2]:
            return
        now = time.monotonic()
        if state is None or state != seen:
            seen, quiet_since = state, now
        elif now - quiet_since >= QUIET_SECONDS:
            break
        if now > deadline:
            raise LLMBError(f"tracking store {uri} is still being created by another program after "
                            f"{WAIT_SECONDS:.0f} s; try again once it is done")
        time.sleep(POLL_SECONDS)
    else:
        return  # nobody is making it: MLflow makes it in place
    leftovers = sorted(t for t in seen[1] if t.startswith(LEFTOVER_PREFIX))
    if seen[0] != head and leftovers:
        raise LLMBError(f"tracking store {uri} was left half-made by programs that created it at the "
                        f"same moment (MLflow's {leftovers[0]} is left over); if it holds nothing yet, "
                        f"delete {path} and start again")


def schema_state(path: str) -> tuple[str | None, frozenset[str], bool] | None:
    """The store's schema revision, its tables, and whether MLflow's default experiment is
    there yet; None while it cannot be read (a writer holds it)."""
    read_only = Path(path).absolute().as_uri() + "?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(read_only, uri=True, timeout=1.0)) as db:
            tables = frozenset(t for (t,) in db.execute("select name from sqlite_master where type = 'table'"))
            version = None
            if "alembic_version" in tables:
                version = next(iter(db.execute("select version_num from alembic_version")), (None,))[0]
            default = "experiments" in tables and any(
                db.execute("select 1 from experiments where experiment_id = 0"))
            return version, tables, default
    except sqlite3.Error:
        return None
