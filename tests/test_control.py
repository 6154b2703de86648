"""Pause, resume, step once, checkpoint now and stop a training running in another process,
through the tracking store (`llmb runs ...`)."""

import os
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from llmb_mlflow.run_layout import TRAINER_STATE_TAG
from llmb_mlflow.library.reader import RunReader

from conftest import TINY_ARGS, run_of


def wait_for(condition, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def training(store_uri):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmb_mlflow", "train", *TINY_ARGS, "--max-iters", "100000",
         "--checkpoint-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield proc, run_of(proc)
    finally:
        proc.kill()
        proc.wait()


def test_pause_step_resume_checkpoint_and_stop_from_another_process(training, store_uri, llmb):
    proc, run_id = training
    reader = RunReader(store_uri)
    tags = lambda: MlflowClient(store_uri).get_run(run_id).data.tags  # noqa: E731
    wait_for(lambda: reader.run(run_id).last_step >= 5, what="training to start")

    assert llmb("runs", "pause", run_id).code == 0
    wait_for(lambda: tags().get(TRAINER_STATE_TAG) == "paused", what="paused")
    paused_at = reader.run(run_id).last_step
    listing = llmb("runs", "list")
    assert "RUNNING (paused)" in listing.out
    assert reader.run(run_id).status == "RUNNING"

    for expected in (paused_at + 1, paused_at + 2):
        assert llmb("runs", "step", run_id).code == 0
        wait_for(lambda: reader.run(run_id).last_step == expected, what=f"step {expected}")
    assert tags().get(TRAINER_STATE_TAG) == "paused"

    assert llmb("runs", "checkpoint", run_id).code == 0
    wait_for(lambda: reader.metric(run_id, "checkpoint_bytes").steps.tolist() == [paused_at + 2],
             what="a checkpoint at the paused step")

    assert llmb("runs", "resume", run_id).code == 0
    wait_for(lambda: reader.run(run_id).last_step > paused_at + 20, what="training to go on")
    assert tags().get(TRAINER_STATE_TAG) == "running"

    assert llmb("runs", "stop", run_id).code == 0
    proc.wait(timeout=60)
    assert proc.returncode == 130
    run = reader.run(run_id)
    assert run.status == "KILLED"
    steps = reader.metric(run_id, "train_loss").steps.tolist()
    assert steps == list(range(1, len(steps) + 1))
    assert reader.metric(run_id, "checkpoint_bytes").steps.tolist()[-1] == steps[-1]
    paused = reader.metric(run_id, "paused")  # the loss chart marks when it paused and resumed
    assert paused.steps.tolist() == [paused_at, paused_at + 2] and paused.values.tolist() == [1.0, 0.0]


def test_control_needs_a_running_llmbreaker_run(llmb, finished_run, store_uri):
    result = llmb("runs", "pause", finished_run.run_id, "--tracking-uri", finished_run.uri)
    assert result.code == 1 and "is not running (it is FINISHED)" in result.err
    result = llmb("runs", "stop", "0123456789abcdef")
    assert result.code == 1 and "no run with id '0123456789abcdef'" in result.err
    client = MlflowClient(store_uri)
    foreign = client.create_run(client.create_experiment("other")).info.run_id
    result = llmb("runs", "resume", foreign)
    assert result.code == 1 and "is not an LLMBreaker training run" in result.err
    for result in (llmb("runs", "pause", "x", "--tracking-uri", "http://127.0.0.1:9"),):
        assert result.code == 1 and "unreachable" in result.err


def test_step_requires_a_paused_run(training, llmb, store_uri):
    _, run_id = training
    result = llmb("runs", "step", run_id)
    assert result.code == 1 and "is not paused; pause it before stepping" in result.err
