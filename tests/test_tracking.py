"""What a run contains, checked in a real sqlite MLflow store after real tiny trainings."""

import os
import socket

import numpy as np
import pytest
from mlflow import MlflowClient

from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
from llmb_mlflow.run_layout import ATTENTION_IMAGE_KEY, SNAPSHOT_BYTES
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.training.tracker import Tracker

from conftest import train_tiny

EVAL_STEPS = [0, 10, 20, 25]


def history(client, run_id, key):
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_every_step_is_logged_exactly_once(finished_run):
    client = MlflowClient(finished_run.uri)
    for key in ("train_loss", "lr", "grad_norm", "tokens_per_sec"):
        assert history(client, finished_run.run_id, key) == list(range(1, 26)), key


def test_evaluations_and_snapshots_at_first_every_interval_and_last_step(finished_run):
    client = MlflowClient(finished_run.uri)
    assert history(client, finished_run.run_id, "val_loss") == EVAL_STEPS
    assert history(client, finished_run.run_id, "eval_train_loss") == EVAL_STEPS
    assert history(client, finished_run.run_id, SNAPSHOT_BYTES) == EVAL_STEPS
    stored = [a.path for a in client.list_artifacts(finished_run.run_id, "snapshots")]
    assert stored == [f"snapshots/step_{s:08d}.npz" for s in EVAL_STEPS]
    samples = [a.path for a in client.list_artifacts(finished_run.run_id, "samples")]
    assert samples == [f"samples/step_{s:08d}.txt" for s in EVAL_STEPS]


def test_params_tags_and_status(finished_run):
    run = MlflowClient(finished_run.uri).get_run(finished_run.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["dataset"] == "shakespeare" and params["vocab_size"] == "65"
    assert params["n_params"] == str(finished_run.trainer.model.num_parameters())
    assert params["precision"] == finished_run.trainer.precision and params["device"] == "cpu"
    assert params["n_embd"] == "16" and params["max_iters"] == "25" and params["lr"] == "0.001"
    assert run.data.tags["llmb.kind"] == "training"
    assert "mlflow.user" in run.data.tags
    assert run.data.tags["llmb.pid"] == str(os.getpid()) and run.data.tags["llmb.host"] == socket.gethostname()
    assert f"(/llmb/?run={finished_run.run_id})" in run.data.tags["mlflow.note.content"]


def test_learning_rate_warms_up_then_decays_to_a_tenth(store_uri, shakespeare):
    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, max_iters=40, warmup=10, eval_interval=40)
    lrs = {m.step: m.value for m in MlflowClient(store_uri).get_metric_history(tracker.run_id, "lr")}
    assert sorted(lrs) == list(range(1, 41))
    assert [lrs[s] for s in (1, 5, 10)] == pytest.approx([1e-4, 5e-4, 1e-3])  # linear warm-up
    decay = [lrs[s] for s in range(10, 41)]
    assert all(a > b for a, b in zip(decay, decay[1:]))  # then a steady decay ...
    assert lrs[25] == pytest.approx((1e-3 + 1e-4) / 2)  # ... along a cosine (halfway at half time)
    assert lrs[40] == pytest.approx(1e-4)  # ... to a tenth


def test_attention_images_per_step_for_mlflow_ui(finished_run):
    client = MlflowClient(finished_run.uri)
    images = [a.path for a in client.list_artifacts(finished_run.run_id, "images")]
    pngs = [p for p in images if p.endswith(".png")]
    assert len(pngs) == len(EVAL_STEPS)
    assert sorted(int(p.split("+step+")[1].split("+")[0]) for p in pngs) == EVAL_STEPS
    assert all(p.startswith(f"images/{ATTENTION_IMAGE_KEY}+") for p in pngs)


def test_samples_are_readable_text(finished_run):
    client = MlflowClient(finished_run.uri)
    text = client.download_artifacts(finished_run.run_id, "samples/step_00000025.txt")
    with open(text, encoding="utf-8") as f:
        content = f.read()
    assert content.startswith("step 25 (temperature 0.8)")
    snap = RunReader(finished_run.uri).snapshot(finished_run.run_id, 25)
    assert snap.sample in content


def test_snapshots_in_the_store_hold_their_invariants(finished_run):
    reader = RunReader(finished_run.uri)
    for step in EVAL_STEPS:
        snap = reader.snapshot(finished_run.run_id, step)
        assert snap.step == step
        assert snap.embedding.shape == (65, 3)
        att = snap.attention.astype(np.float32)
        assert att.shape == (2, 2, 16, 16)
        assert np.allclose(att.sum(-1), 1, atol=1e-2) and np.all(np.triu(att, 1) == 0)
        assert np.all(np.diff(snap.topk_probs.astype(np.float32), axis=1) <= 0)
        assert np.all(snap.topk_probs <= 1)
    first, last = (reader.snapshot(finished_run.run_id, s) for s in (0, 25))
    assert first.probe == last.probe and first.prompt == last.prompt


def test_tracking_off_creates_no_run_and_trains_identically(store_uri, shakespeare, finished_run):
    untracked = train_tiny(shakespeare, Tracker())
    client = MlflowClient(store_uri)
    experiments = client.search_experiments()
    assert [e.name for e in experiments] == ["Default"]
    assert client.search_runs([e.experiment_id for e in experiments]) == []
    assert untracked.last_eval == finished_run.trainer.last_eval


class FailingTracker(MlflowTracker):
    """A real MLflow tracker whose training blows up at step 7."""

    def log_metrics(self, step, metrics):
        super().log_metrics(step, metrics)
        if step == 7:
            raise RuntimeError("simulated failure")


def test_a_failed_training_is_marked_failed_with_its_metrics_kept(store_uri, shakespeare):
    tracker = FailingTracker(store_uri)
    with pytest.raises(RuntimeError, match="simulated failure"):
        train_tiny(shakespeare, tracker)
    client = MlflowClient(store_uri)
    assert client.get_run(tracker.run_id).info.status == "FAILED"
    assert client.get_run(tracker.run_id).data.tags["llmb.state"] == "failed"
    assert client.get_run(tracker.run_id).data.tags["llmb.failure"] == "RuntimeError: simulated failure"
    assert history(client, tracker.run_id, "train_loss") == list(range(1, 8))
    assert history(client, tracker.run_id, SNAPSHOT_BYTES) == [0]


def test_runs_go_to_the_named_experiment_with_the_given_name(store_uri, shakespeare):
    tracker = MlflowTracker(store_uri, experiment="other")
    from llmb_mlflow.training.corpus import prepare_dataset
    from llmb_mlflow.training.trainer import Trainer, run_training
    from conftest import tiny_config

    config = tiny_config(max_iters=3)
    run_training(Trainer(config, prepare_dataset(shakespeare, 16)), tracker, run_name="my-run")
    run = MlflowClient(store_uri).get_run(tracker.run_id)
    assert run.info.run_name == "my-run"
    assert MlflowClient(store_uri).get_experiment(run.info.experiment_id).name == "other"
