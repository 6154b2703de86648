"""A sqlite store is readied before a process first opens it: a new one appears whole or not at
all, one another program is making is waited for (never migrated alongside it), and one left
half-made by others says so in one line."""

import shutil
import sqlite3
import threading

import pytest
from mlflow import MlflowClient

from llmb_mlflow.store import compat as mlflow_compat, sqlite as sqlite_store, client as store
from llmb_mlflow.errors import LLMBError


def state(path):
    return sqlite_store.schema_state(str(path))


def test_a_new_store_is_linked_into_place_whole(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store.client(uri).search_experiments()
    version, _, default_experiment = state(tmp_path / "mlflow.db")
    assert version == mlflow_compat.schema_revision() and default_experiment
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".llmb-new-")) == []


def test_a_store_another_program_is_making_is_waited_for_not_migrated_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mlflow.db"
    path.touch()  # the other program has just opened it: ours must not make it
    uri = f"sqlite:///{path}"
    failures = []

    def other_program():
        try:
            MlflowClient(uri).search_experiments()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    maker = threading.Thread(target=other_program)
    maker.start()
    try:
        store.client(uri).search_experiments()
    finally:
        maker.join()
    assert failures == []
    assert state(path)[0] == mlflow_compat.schema_revision()


def test_a_store_left_half_made_by_others_says_so_in_one_line(template_db, tmp_path, monkeypatch):
    path = tmp_path / "mlflow.db"
    shutil.copy(template_db, path)
    with sqlite3.connect(path) as db:  # as two plain MLflow programs racing each other leave it
        db.execute("update alembic_version set version_num = 'c8d9e0f1a2b3'")
        db.execute("create table _alembic_tmp_experiments (experiment_id integer)")
    monkeypatch.setattr(sqlite_store, "QUIET_SECONDS", 0.3)
    with pytest.raises(LLMBError) as failure:
        store.client(f"sqlite:///{path}")
    message = str(failure.value)
    assert "left half-made" in message and "_alembic_tmp_experiments" in message and f"delete {path}" in message
    assert "\n" not in message
