"""The read API against a real store: metric histories, snapshots, caching, bad references."""

import os

import numpy as np
import pytest
from mlflow import MlflowClient

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
from llmb_mlflow.library.reader import RunReader

from conftest import train_tiny


def test_run_summary(finished_run):
    run = RunReader(finished_run.uri).run(finished_run.run_id)
    assert run.status == "FINISHED" and run.ended
    assert run.max_iters == 25 and run.last_step == 25
    assert run.params["dataset"] == "shakespeare"
    assert run.last_value("val_loss") == pytest.approx(finished_run.trainer.last_eval["val_loss"])


def test_runs_lists_training_runs_newest_first(store_uri, shakespeare):
    ids = []
    for _ in range(2):
        tracker = MlflowTracker(store_uri)
        train_tiny(shakespeare, tracker, max_iters=2)
        ids.append(tracker.run_id)
    client = MlflowClient(store_uri)
    foreign = client.create_run(client.get_experiment_by_name("llmbreaker").experiment_id)
    listed = [r.run_id for r in RunReader(store_uri).runs()]
    assert listed == ids[::-1]
    assert foreign.info.run_id not in listed
    assert RunReader(store_uri).runs("no-such-experiment") == []


def test_runs_of_several_experiments_come_from_one_search_newest_first(store_uri):
    client = MlflowClient(store_uri)
    first, second, empty = (client.create_experiment(name) for name in ("one", "two", "none"))
    made = [client.create_run(experiment, start_time=1_000 * i, tags={"llmb.kind": "training"}).info
            for i, experiment in enumerate((first, second, first), start=1)]
    client.create_run(second, start_time=9_000)  # not a training: never listed
    reader = RunReader(store_uri)
    searches = []
    search_runs = reader.client.search_runs
    reader.client.search_runs = lambda *args, **kwargs: searches.append(args) or search_runs(*args, **kwargs)
    listed = reader.runs_of([first, second, empty])
    assert len(searches) == 1
    assert [(r.run_id, r.experiment_id) for r in listed] == [(i.run_id, i.experiment_id) for i in made[::-1]]
    assert [r.run_id for r in reader.runs_of([second])] == [made[1].run_id]
    assert reader.runs_of([]) == [] and reader.runs_of([first], max_results=1)[0].run_id == made[2].run_id


def test_metric_whole_downsampled_and_incremental(finished_run):
    reader = RunReader(finished_run.uri)
    whole = reader.metric(finished_run.run_id, "train_loss")
    assert whole.steps.tolist() == list(range(1, 26))
    sampled = reader.metric(finished_run.run_id, "train_loss", max_points=6)
    assert len(sampled) <= 6 and sampled.steps[0] == 1 and sampled.steps[-1] == 25
    assert set(sampled.steps.tolist()) <= set(whole.steps.tolist())
    after = reader.metric(finished_run.run_id, "train_loss", after_step=20)
    assert after.steps.tolist() == [21, 22, 23, 24, 25]
    assert np.array_equal(after.values, whole.values[-5:])
    assert len(reader.metric(finished_run.run_id, "train_loss", after_step=25)) == 0
    assert len(reader.metric(finished_run.run_id, "no_such_metric")) == 0


def test_incremental_reads_page_through_long_histories(store_uri):
    from mlflow.entities import Metric

    client = MlflowClient(store_uri)
    run_id = client.create_run(client.create_experiment("long")).info.run_id
    for start in range(0, 6000, 1000):
        client.log_batch(run_id, metrics=[Metric("train_loss", float(s), 0, s)
                                          for s in range(start, start + 1000)])
    reader = RunReader(store_uri)
    assert reader.metric(run_id, "train_loss").steps.tolist() == list(range(6000))
    assert reader.metric(run_id, "train_loss", after_step=100).steps.tolist() == list(range(101, 6000))
    assert len(reader.metric(run_id, "train_loss", max_points=500)) <= 500


def test_snapshot_steps_and_cached_snapshots(finished_run):
    reader = RunReader(finished_run.uri)
    assert reader.snapshot_steps(finished_run.run_id) == [0, 10, 20, 25]
    first = reader.snapshot(finished_run.run_id, 10)
    assert reader.snapshot(finished_run.run_id, 10) is first


def test_missing_run_is_a_one_line_error(finished_run):
    with pytest.raises(LLMBError, match="no run with id 'deadbeef'"):
        RunReader(finished_run.uri).run("deadbeef")


def test_missing_and_corrupt_snapshot_artifacts(store_uri, shakespeare):
    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, max_iters=10)
    reader = RunReader(store_uri)
    artifacts = MlflowClient(store_uri).get_run(tracker.run_id).info.artifact_uri
    folder = artifacts.removeprefix("file://")
    os.remove(os.path.join(folder, "snapshots/step_00000000.npz"))
    with open(os.path.join(folder, "snapshots/step_00000010.npz"), "r+b") as f:
        f.truncate(100)
    with pytest.raises(LLMBError, match="snapshot of step 0 in run .* is missing"):
        reader.snapshot(tracker.run_id, 0)
    with pytest.raises(LLMBError, match="snapshot of step 10 in run .* is corrupt"):
        reader.snapshot(tracker.run_id, 10)
    with pytest.raises(LLMBError, match="missing"):
        reader.snapshot(tracker.run_id, 999)


def test_unreachable_server_fails_fast_with_one_line():
    with pytest.raises(LLMBError, match="tracking server http://127.0.0.1:9 is unreachable"):
        RunReader("http://127.0.0.1:9")


def test_a_point_logged_far_ahead_costs_a_read_no_more_than_its_own_points(store_uri):
    """Anyone may log a point at step 2**62: reads must follow the points, not the steps."""
    import time

    from mlflow.entities import Metric

    client = MlflowClient(store_uri)
    run_id = client.create_run(client.create_experiment("far"), tags={"llmb.kind": "training"}).info.run_id
    now = int(time.time() * 1000)
    points = [Metric("train_loss", 3.0 - i / 100, now, i) for i in range(1, 21)]
    points += [Metric("train_loss", 1.0, now, 2**62), Metric("snapshot_bytes", 10, now, 0),
               Metric("snapshot_bytes", 10, now, 2**62)]
    client.log_batch(run_id, metrics=points)
    reader = RunReader(store_uri)
    started = time.monotonic()
    assert reader.snapshot_steps(run_id) == [0, 2**62]
    assert reader.metric(run_id, "train_loss").steps.tolist() == [*range(1, 21), 2**62]
    incremental = reader.metric(run_id, "train_loss", after_step=10).steps.tolist()
    assert incremental[:10] == list(range(11, 21)) and incremental[-1] == 2**62
    client.set_terminated(run_id)
    assert reader.metric(run_id, "train_loss", after_step=15).steps.tolist() == [16, 17, 18, 19, 20, 2**62]
    assert time.monotonic() - started < 30  # a generous bound: stepping through 2**62 never ends
