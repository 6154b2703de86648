"""Tracking from a helper process: the run records the training's own process and times,
Ctrl-C in a terminal stops the training (not the helper), a training killed outright still
gets its run ended with everything it reported, and a helper that dies stops the training
with a one-line error."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
from mlflow import MlflowClient

from llmb_mlflow import session
from llmb_mlflow.training.corpus import prepare_dataset
from llmb_mlflow.launch.launcher import launch
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.run_layout import PID_TAG, TRAINER_STATE_TAG
from llmb_mlflow.training.trainer import Trainer

from conftest import TINY_ARGS, run_of, tiny_config, until

ENDLESS = [*TINY_ARGS, "--eval-interval", "10", "--checkpoint-interval", "20", "--max-iters", "100000"]


def helper_of(pid: int) -> psutil.Process:
    return until(lambda: next((p for p in psutil.Process(pid).children()
                               if "llmb_mlflow.tracking.process" in p.cmdline()), None), what="the helper")


def test_the_run_records_the_training_process_and_when_each_point_was_measured(store_uri, shakespeare):
    config = tiny_config(max_iters=12)
    trainer = Trainer(config, prepare_dataset(shakespeare, config.model.block_size), device="cpu")
    before = int(time.time() * 1000)
    outcome = session.run(trainer, session.Tracking(store_uri, "helper"), out=session.Output(print, print))
    after = int(time.time() * 1000)
    run = MlflowClient(store_uri).get_run(outcome.run_id)
    assert run.info.status == "FINISHED" and run.data.tags[PID_TAG] == str(os.getpid())
    history = MlflowClient(store_uri).get_metric_history(outcome.run_id, "train_loss")
    assert [m.step for m in history] == list(range(1, 13))
    stamps = [m.timestamp for m in history]
    assert stamps == sorted(stamps) and before <= stamps[0] and stamps[-1] <= after
    assert RunReader(store_uri).checkpoint_steps(outcome.run_id) == [12]
    assert run.data.tags["mlflow.source.type"] == "LOCAL" and run.data.tags["mlflow.user"]


def test_the_helper_tells_mlflow_it_is_no_notebook_without_importing_ipython(store_uri):
    code = ("import json, sys; from llmb_mlflow.store import compat as mlflow_compat; from llmb_mlflow.tracking import helper as t; "
            f"t._warm_up({store_uri!r}); "
            "print(json.dumps([sys.modules.get('IPython') is not None, mlflow_compat.context_tags({})]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, tags = json.loads(done.stdout.splitlines()[-1])
    assert not imported and tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.user"]


def test_ctrl_c_in_a_terminal_reaches_both_and_the_training_still_ends_its_run(store_uri):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "llmb_mlflow", "train", *ENDLESS], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        run_id = run_of(proc)
        reader = RunReader(store_uri)
        until(lambda: reader.run(run_id).last_step >= 20, what="20 steps")
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "marked KILLED" in err and "Traceback" not in err
    run = reader.run(run_id)
    assert run.status == "KILLED" and run.tags[TRAINER_STATE_TAG] == "stopped"
    steps = reader.metric(run_id, "train_loss").steps.tolist()
    assert steps == list(range(1, len(steps) + 1)) and reader.checkpoint_steps(run_id)[-1] == steps[-1]


def test_a_training_killed_outright_has_its_run_ended_with_all_it_reported(store_uri):
    training = launch(["train", *ENDLESS], store_uri)
    reader = RunReader(store_uri)
    try:
        helper = helper_of(training.process.pid)
        until(lambda: reader.run(training.run_id).last_step >= 30, what="30 steps")
    finally:
        os.kill(training.process.pid, signal.SIGKILL)
        training.process.wait(timeout=30)
    helper.wait(timeout=60)  # it stores what it holds, ends the run and exits
    run = reader.run(training.run_id)
    assert run.status == "FAILED" and run.tags[TRAINER_STATE_TAG] == "failed"
    assert run.tags["llmb.failure"].startswith("the training's process ended before it ended its run")
    steps = reader.metric(training.run_id, "train_loss").steps.tolist()
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 30
    for step in reader.snapshot_steps(training.run_id):  # every listed snapshot is whole
        assert reader.snapshot(training.run_id, step).step == step


def test_a_helper_that_dies_stops_the_training_with_a_one_line_error(store_uri, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PYTHONUNBUFFERED": "1",
           "LLMB_SPOOL_DIR": str(tmp_path / "spool")}
    proc = subprocess.Popen([sys.executable, "-m", "llmb_mlflow", "train", *ENDLESS], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_of(proc)
        helper_of(proc.pid).kill()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]  # what it had not taken is kept (test_helper_robustness)
    assert last.startswith("Error: the tracking process ended unexpectedly"), err
    assert "Traceback" not in err


def test_a_training_that_cannot_load_its_corpus_leaves_no_helper_and_no_run(store_uri, llmb, tmp_path):
    before = {p.pid for p in psutil.Process().children()}
    result = llmb("train", *TINY_ARGS, "--dataset", str(tmp_path / "missing.txt"))
    assert result.code == 1 and result.err == f"Error: corpus file not found: {tmp_path / 'missing.txt'}\n"

    def helpers():
        alive = []
        for process in psutil.Process().children():
            try:
                if process.pid not in before and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.NoSuchProcess:
                continue
        return alive

    until(lambda: not helpers(), timeout=60, what="the helper to exit")
    assert RunReader(store_uri).runs() == []
