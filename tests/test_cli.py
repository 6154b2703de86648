"""The ``llmb`` command line, run through its real entry point against a real store."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from llmb_mlflow.library.reader import RunReader

from bad_settings import OUT_OF_RANGE
from conftest import TINY_ARGS, run_of


def runs_in(uri):
    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_train_logs_a_run_and_says_how_to_view_it(llmb, store_uri):
    result = llmb("train", *TINY_ARGS, "--max-iters", "12", "--eval-interval", "5",
                  "--run-name", "cli-run")
    assert result.code == 0, result.err
    run_id = re.search(r"Logging to MLflow run ([0-9a-f]{32}) \(cli-run\)", result.out).group(1)
    assert f"llmb runs show {run_id}" in result.out
    assert "mlflow ui" in result.out
    assert "step 12/12" in result.err
    run = RunReader(store_uri).run(run_id)
    assert run.status == "FINISHED" and run.last_step == 12 and run.run_name == "cli-run"


def test_no_tracking_creates_no_run(llmb, store_uri):
    result = llmb("train", *TINY_ARGS, "--max-iters", "5", "--no-tracking")
    assert result.code == 0, result.err
    assert "Done: step 5" in result.out and "Logging to" not in result.out
    assert runs_in(store_uri) == []


def test_runs_list_and_show(llmb, finished_run):
    listing = llmb("runs", "list", "--tracking-uri", finished_run.uri)
    assert listing.code == 0
    header, row = listing.out.splitlines()[:2]
    assert header.split()[:4] == ["RUN", "ID", "NAME", "STATUS"]
    assert row.startswith(finished_run.run_id) and "FINISHED" in row and "25/25" in row
    shown = llmb("runs", "show", finished_run.run_id, "--tracking-uri", finished_run.uri)
    assert shown.code == 0
    assert "FINISHED, step 25/25" in shown.out
    assert "Snapshots (4): 0, 10, 20, 25" in shown.out
    assert "Checkpoints (1): 25" in shown.out
    assert "n_embd = 16" in shown.out
    last = RunReader(finished_run.uri).snapshot(finished_run.run_id, 25)
    assert last.sample in shown.out


def test_runs_list_on_an_empty_store(llmb, store_uri):
    result = llmb("runs", "list")
    assert result.code == 0 and "No LLMBreaker runs" in result.out


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "hamlet"], "unknown dataset 'hamlet'"),
    (["train", "--dataset", "missing/file.txt"], "corpus file not found"),
    (["train", "--lr", "0"], "--lr must be in (0, 1]"),
    (["train", "--lr", "fast"], "'fast' is not a valid float"),
    (["train", "--n-embd", "30", "--n-head", "4"], "--n-embd (30) must be divisible by --n-head (4)"),
    (["train", "--eval-interval", "0"], "--eval-interval must be between 1"),
    (["train", "--preset", "huge"], "'huge' is not one of"),
    (["train", "--max-iters", "-3"], "--max-iters must be between 1"),
    (["train", "--tracking-uri", "http://127.0.0.1:9"], "tracking server http://127.0.0.1:9 is unreachable"),
    (["train", "--tracking-uri", "sqlite:////no/such/folder/mlflow.db"], "tracking store folder does not exist"),
    (["train", "--bogus"], "No such option '--bogus' (see 'llmb train --help')"),
    (["runs", "show", "0123456789abcdef"], "no run with id '0123456789abcdef'"),
    (["runs", "list", "--limit", "0"], "Invalid value for '--limit'"),
    (["nonsense"], "No such command 'nonsense'"),
])
def test_bad_input_is_one_line_on_stderr_with_nonzero_exit(llmb, store_uri, args, message):
    result = llmb(*args)
    assert result.code != 0
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err
    assert runs_in(store_uri) == []


def test_every_setting_option_has_an_out_of_range_case():
    from llmb_mlflow.cli.options import SETTING_OPTIONS
    from llmb_mlflow.training.config import SETTINGS

    numbers = [SETTINGS[name] for name in SETTING_OPTIONS if SETTINGS[name].kind is not bool]
    assert set(OUT_OF_RANGE) == {setting.option for setting in numbers}


@pytest.mark.parametrize("flag", OUT_OF_RANGE)
def test_a_setting_out_of_range_is_named_by_its_option(llmb, store_uri, flag):
    value, problem = OUT_OF_RANGE[flag]
    result = llmb("train", "--no-tracking", flag, value)
    assert result.code == 1
    assert result.err == f"Error: {flag} {problem}\n"
    assert result.out == ""


@pytest.mark.parametrize("args, message", [
    (["--n-embd", "30", "--n-head", "4"], "--n-embd (30) must be divisible by --n-head (4)"),
    # n_embd 32 comes from the preset: the error still names the option that changes it
    (["--preset", "small", "--n-head", "5"], "--n-embd (32) must be divisible by --n-head (5)"),
])
def test_settings_that_do_not_fit_each_other_are_named_by_their_options(llmb, store_uri, args, message):
    result = llmb("train", "--no-tracking", *args)
    assert result.code == 1 and result.err == f"Error: {message}\n"


def test_bad_corpus_files_by_path(llmb, store_uri, tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 500)
    result = llmb("train", "--dataset", tmp_path / "latin1.txt")
    assert result.code == 1 and "not valid UTF-8" in result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [[], ["train"], ["runs"], ["runs", "list"], ["runs", "show"]])
def test_every_command_has_help(llmb, command):
    result = llmb(*command, "--help")
    assert result.code == 0 and "Usage: llmb" in result.out


def test_ctrl_c_marks_the_run_killed_and_keeps_what_was_logged(store_uri):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmb_mlflow", "train", *TINY_ARGS, "--max-iters", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        run_id = run_of(proc)
        reader = RunReader(store_uri)
        deadline = time.monotonic() + 60
        while reader.run(run_id).last_step < 20:
            assert time.monotonic() < deadline, "training did not log steps"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "marked KILLED" in err and "Traceback" not in err
    run = reader.run(run_id)
    assert run.status == "KILLED" and run.tags["llmb.state"] == "stopped" and "llmb.heartbeat" not in run.tags
    steps = reader.metric(run_id, "train_loss").steps.tolist()
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 20
    assert reader.metric(run_id, "checkpoint_bytes").steps.tolist()[-1] == steps[-1]
    assert reader.checkpoint_steps(run_id)[-1] == steps[-1]  # the last checkpoint's logged model is READY
