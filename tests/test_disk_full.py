"""A sqlite store whose disk fills up during a training (a real tmpfs, filled by a file): the
training's console names the condition in one line, shows no traceback, keeps everything for
``llmb runs sync``, which completes the run once the space is freed.

The helper's wait for the store at the training's end (a minute) is cut to seconds by a
``sitecustomize`` module put first on the helper's PYTHONPATH (``HOOK``), which acts only in
the process whose command line is the helper's."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from llmb_mlflow.library.reader import RunReader

from conftest import LIVE_ARGS, new_store, run_of, until

HOOK = textwrap.dedent('''
    import importlib.abc, importlib.util, os, sys

    with open("/proc/self/cmdline", "rb") as f:
        _helper = b"llmb_mlflow.tracking.process" in f.read()

    class ShortFinish(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "llmb_mlflow.tracking.mlflow_tracker":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                init = module.MlflowTracker.__init__

                def __init__(self, *args, **kwargs):
                    init(self, *args, **{**kwargs, "finish_timeout": 3.0})

                module.MlflowTracker.__init__ = __init__

            spec.loader.exec_module = exec_module
            return spec

    if _helper:
        sys.meta_path.insert(0, ShortFinish())
''')


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs, unmounted afterwards (lazily: the test's own store clients keep its
    database open)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder):
    """Write a file until the disk refuses; the file, to remove when space is to come back."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_a_full_disk_is_one_line_and_sync_completes_the_run(template_db, small_disk, tmp_path, llmb,
                                                             monkeypatch):
    uri = new_store(template_db, small_disk)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    spool = tmp_path / "spool"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LLMB_SPOOL_DIR": str(spool),
           "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    err_path = tmp_path / "stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmb_mlflow", "train", *LIVE_ARGS, "--checkpoint-interval", "100",
             "--tracking-uri", uri], cwd=small_disk, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    reader = RunReader(uri)
    try:
        run_id = run_of(proc)
        until(lambda: reader.run(run_id).last_step >= 10, 60, "10 steps stored")
        filler = fill(small_disk)
        until(lambda: "disk is full" in err_path.read_text(), 60, "the condition to be said")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    err = err_path.read_text()
    assert "Traceback" not in err and "SQLAlchemy" not in err, err
    said = [line for line in err.splitlines() if "disk is full" in line]
    assert said[0].startswith("The tracking store's disk is full ("), err
    assert len(said) <= 3, err  # the condition, the end's note of retried writes, what was kept
    last = err.strip().splitlines()[-1]
    assert f"of run {run_id} are kept in {spool / run_id}: send them with `llmb runs sync`" in last, err

    filler.unlink()
    monkeypatch.setenv("LLMB_SPOOL_DIR", str(spool))
    synced = llmb("runs", "sync")
    assert synced.code == 0 and f"of run {run_id} to {uri}; it is KILLED." in synced.out, synced
    run = reader.run(run_id)
    steps = reader.metric(run_id, "train_loss").steps.tolist()
    assert run.status == "KILLED" and steps == list(range(1, run.last_step + 1)), run  # nothing lost
    assert run.last_step > 10
    for step in reader.snapshot_steps(run_id):
        assert reader.snapshot(run_id, step).step == step
    assert not (spool / run_id).exists()


def test_in_the_helper_mlflow_logs_one_line_and_each_condition_is_said_once(capsys):
    import logging

    import mlflow  # noqa: F401 (configures MLflow's loggers)

    from llmb_mlflow.store import logs
    from llmb_mlflow.tracking import outage

    logs.quiet_store_logging()
    try:
        try:
            raise OSError("first line\nsecond line")
        except OSError:
            logging.getLogger("mlflow.store.db.utils").exception("SQLAlchemy database error. caught\n%s", "x")
            logging.getLogger("mlflow.tracking").exception("something unexpected\nmore")
        logged = capsys.readouterr().err.splitlines()
        assert len(logged) == 1 and "something unexpected (OSError: first line)" in logged[0], logged
    finally:
        logging.getLogger(logs.DB_ERROR_LOGGER).removeFilter(logs._drop_raised_db_errors)
        for handler in logging.getLogger("mlflow").handlers:
            handler.removeFilter(logs._one_line)

    said = []
    conditions = outage.StoreConditions(said.append)
    full = "(sqlite3.OperationalError) database or disk is full"
    for error in (None, full, "[Errno 28] No space left on device", full, None, None, "HTTP 503"):
        conditions.update(error)
    assert said == [f"The tracking store's disk is full ({full}): the training goes on, keeping what it "
                    "logs (on disk past 4 MB), and retries.",
                    "The tracking store takes writes again: what was kept is being sent.",
                    "Writes to the tracking store fail (HTTP 503): the training goes on, keeping what it "
                    "logs (on disk past 4 MB), and retries."]
