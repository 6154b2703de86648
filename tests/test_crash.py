"""Crashes: a trainer killed with SIGKILL mid-run, with its tracking helper (the machine went
down), is recognised, loses nothing readers can see, and resumes from its last checkpoint with
no repeated or missing steps. (A training killed alone has its run ended by its helper:
test_tracking_process.)"""

import os
import re
import signal
import time

import pytest
from mlflow import MlflowClient

from llmb_mlflow.library import control
from llmb_mlflow import run_layout
from llmb_mlflow.launch.launcher import launch
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.library.registry import ModelLibrary

from conftest import TINY_ARGS, until

FAST_TINY = [*TINY_ARGS, "--eval-interval", "10", "--checkpoint-interval", "20", "--max-iters", "100000"]


def test_a_sigkilled_trainer_is_crashed_keeps_whole_artifacts_and_resumes_without_gaps(store_uri, llmb):
    training = launch(["train", *FAST_TINY, "--run-name", "doomed"], store_uri)
    run_id, reader, library = training.run_id, RunReader(store_uri), ModelLibrary(store_uri)
    try:
        until(lambda: len(library.checkpoint_steps(run_id)) >= 3, what="three checkpoints")
    finally:  # killed whatever happens, helper and all: the test's point, and nothing left behind
        os.killpg(training.process.pid, signal.SIGKILL)
        training.process.wait(timeout=30)

    listing = llmb("runs", "list").out
    assert f"{run_id}  doomed  RUNNING (crashed: its process is gone)" in listing
    snapshot_steps = reader.snapshot_steps(run_id)
    assert snapshot_steps[:3] == [0, 10, 20]
    for step in snapshot_steps:  # every listed snapshot is whole
        assert reader.snapshot(run_id, step).step == step
    checkpoints = library.checkpoint_steps(run_id)
    for step in checkpoints:  # and so is every listed checkpoint
        version = library.save(run_id, "crash-site", step=step)
        assert library.checkpoint(version.ref)[1]["step"] == step
    logged = reader.metric(run_id, "train_loss").steps.tolist()
    assert logged == list(range(1, len(logged) + 1))  # what reached the store has no gaps

    marked = llmb("runs", "mark-failed", run_id)
    assert marked.code == 0 and "crashed: its process is gone" in marked.out
    ended = MlflowClient(store_uri).get_run(run_id)
    assert ended.info.status == "FAILED" and ended.data.tags["llmb.state"] == "failed"
    again = llmb("runs", "mark-failed", run_id)
    assert again.code == 1 and again.err == f"Error: run {run_id} is not running (it is FAILED)\n"

    last = max(checkpoints)
    resumed = llmb("resume", "crash-site", "--max-iters", last + 15)
    assert resumed.code == 0, resumed.err
    new_run = reader.runs()[0]
    assert new_run.tags["llmb.parent_run"] == run_id
    assert reader.metric(new_run.run_id, "train_loss").steps.tolist() == list(range(last + 1, last + 16))


def test_a_silent_trainer_on_another_machine_is_stale_and_can_be_marked_failed(store_uri, llmb):
    from llmb_mlflow.run_layout import KIND_TAG, TRAINING_RUN
    from llmb_mlflow.store.client import experiment_id

    client = MlflowClient(store_uri)
    exp = experiment_id(client, "llmbreaker")
    now = int(time.time() * 1000)
    tags = {KIND_TAG: TRAINING_RUN, run_layout.HOST_TAG: "another-machine", run_layout.PID_TAG: "4242"}
    silent = client.create_run(exp, run_name="silent", tags={**tags, run_layout.HEARTBEAT_TAG: str(now - 600_000)})
    alive = client.create_run(exp, run_name="alive", tags={**tags, run_layout.HEARTBEAT_TAG: str(now)})

    listing = llmb("runs", "list").out
    assert re.search(r"silent +RUNNING \(stale: silent for 1[01] min\)", listing)  # 10 min, and the test's own
    assert re.search(r"alive +RUNNING +0/\?", listing)
    refused = llmb("runs", "mark-failed", alive.info.run_id)
    assert refused.code == 1 and "is alive (its trainer reported within 60 s)" in refused.err
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"
    assert llmb("runs", "mark-failed", silent.info.run_id).code == 0
    assert llmb("runs", "mark-failed", alive.info.run_id, "--force").code == 0
    assert {client.get_run(r.info.run_id).info.status for r in (silent, alive)} == {"FAILED"}


@pytest.mark.parametrize("value, expected", [("5", 5.0), ("", 60.0)])
def test_the_stale_threshold_can_be_set(monkeypatch, value, expected, llmb, store_uri):
    monkeypatch.setenv("LLMB_STALE_SECONDS", value)
    assert control.stale_seconds() == expected
    from llmb_mlflow.run_layout import KIND_TAG, TRAINING_RUN
    from llmb_mlflow.store.client import experiment_id

    client = MlflowClient(store_uri)
    client.create_run(experiment_id(client, "llmbreaker"), tags={KIND_TAG: TRAINING_RUN})
    monkeypatch.setenv("LLMB_STALE_SECONDS", "soon")
    result = llmb("runs", "list")
    assert result.code == 1
    assert result.err == "Error: LLMB_STALE_SECONDS must be a number of seconds, got 'soon'\n"


def test_a_paused_trainer_keeps_its_heartbeat(store_uri):
    training = launch(["train", *FAST_TINY], store_uri)
    client = MlflowClient(store_uri)
    try:
        control.send(client, training.run_id, "pause")
        beat = lambda: int(client.get_run(training.run_id).data.tags[run_layout.HEARTBEAT_TAG])  # noqa: E731
        until(lambda: client.get_run(training.run_id).data.tags.get(run_layout.TRAINER_STATE_TAG) == "paused")
        first = beat()
        until(lambda: beat() > first, timeout=30, what="a newer heartbeat")
        run = client.get_run(training.run_id)
        assert control.silence(run.data.tags, run.info.status, run.info.start_time) is None
    finally:
        training.process.kill()


def test_a_process_id_reused_by_another_process_is_not_taken_for_the_trainer(store_uri):
    """A trainer's process id may be given to a new process after it died: the run records
    when its process started, so the new process does not keep a crashed run looking alive."""
    import os

    import psutil

    from llmb_mlflow.library.control import process_tags

    now = str(int(time.time() * 1000))
    alive = {**process_tags(), run_layout.HEARTBEAT_TAG: now}
    assert alive[run_layout.PID_TAG] == str(os.getpid())
    assert control.silence(alive, "RUNNING") is None
    started = int(psutil.Process().create_time() * 1000)
    reused = {**alive, run_layout.PID_STARTED_TAG: str(started - 3_600_000)}  # its id, another start
    assert control.silence(reused, "RUNNING") == "crashed: its process is gone"
    unknown_start = {k: v for k, v in alive.items() if k != run_layout.PID_STARTED_TAG}
    assert control.silence(unknown_start, "RUNNING") is None  # recorded before start times were
