"""Train once, copy many: a store a test builds (its ``mlflow.db`` and ``./mlruns``) is kept the
first time, and every later test that asks for it gets a copy in its own folder, with every
path the database names re-pointed at that folder. A test that changes or corrupts its copy
touches nothing of another's."""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Callable

_KEPT: dict[str, tuple[Path, str, object]] = {}  # name -> (kept folder, folder it was built in, result)
_ROOT = Path(tempfile.mkdtemp(prefix="llmb-kept-stores-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def built_once(store_uri: str, name: str, build: Callable[[], object]):
    """``build()``'s result, the store at ``store_uri`` (a fresh ``sqlite:///FOLDER/mlflow.db``
    with ``./mlruns`` in FOLDER) holding what it built: built the first time ``name`` is asked
    for, copied from then on."""
    folder = Path(store_uri.removeprefix("sqlite:///")).parent
    if name not in _KEPT:
        result = build()
        kept = _ROOT / name
        _copy(folder, kept)
        _KEPT[name] = (kept, str(folder), result)
        return result
    kept, built_in, result = _KEPT[name]
    _copy(kept, folder, (built_in, str(folder)))
    return result


def _copy(source: Path, target: Path, repoint: tuple[str, str] | None = None) -> None:
    if (source / "mlruns").exists():
        shutil.copytree(source / "mlruns", target / "mlruns", dirs_exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source / "mlflow.db") as given, sqlite3.connect(target / "mlflow.db") as copy:
        given.backup(copy)
        if repoint:
            _repoint(copy, *repoint)
    given.close()
    copy.close()


def _repoint(db: sqlite3.Connection, old: str, new: str) -> None:
    """Every text value of every table that names ``old`` names ``new`` instead."""
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for column in [row[1] for row in db.execute(f"PRAGMA table_info('{table}')")]:
            db.execute(f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                       f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0', (old, new, old))
    db.commit()
