"""Attention entropy per head: the computation on known matrices, the metrics a tracked training
logs (directly, through the tracking helper process and through the spool), and the viewer's
small multiples."""

import math

import numpy as np
import pytest
from mlflow import MlflowClient

from llmb_mlflow.training import attention_stats
from llmb_mlflow import run_layout

from conftest import tiny_config


def causal_uniform(t: int) -> np.ndarray:
    return np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]


def test_a_head_that_always_looks_at_one_position_has_entropy_zero():
    previous = np.eye(8, k=-1)
    previous[0, 0] = 1  # the first row can only look at itself
    first = np.zeros((8, 8))
    first[:, 0] = 1
    for one_hot in (np.eye(8), previous, first):
        assert attention_stats.head_entropy(one_hot) == pytest.approx(0, abs=1e-12)


def test_a_head_spread_evenly_has_the_mean_of_ln_t():
    expected = np.mean([math.log(t) for t in range(1, 65)])
    assert attention_stats.head_entropy(causal_uniform(64)) == pytest.approx(expected)
    assert attention_stats.uniform_entropy(64) == pytest.approx(expected)
    assert attention_stats.uniform_entropy(1) == 0


def test_entropy_counts_only_the_positions_a_row_may_see_and_works_per_head():
    half = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert attention_stats.head_entropy(half) == pytest.approx(math.log(2) / 2)
    spilled = half + np.triu(np.full((2, 2), 0.7), k=1)  # weight above the diagonal is ignored
    assert attention_stats.head_entropy(spilled) == pytest.approx(math.log(2) / 2)
    stacked = np.stack([np.stack([np.eye(4), causal_uniform(4)]),
                        np.stack([causal_uniform(4), np.eye(4)])]).astype(np.float16)  # (L=2, H=2, T, T)
    entropy = attention_stats.head_entropy(stacked)
    assert entropy.shape == (2, 2)
    assert entropy == pytest.approx(np.array([[0, 1], [1, 0]]) * attention_stats.uniform_entropy(4), abs=1e-3)


def test_the_metric_names_are_the_contracts():
    assert run_layout.attn_entropy_metric(0, 1) == "attn_entropy/l1h2"
    assert run_layout.metric_family("attn_entropy/l3h4") == run_layout.ATTN_ENTROPY
    assert run_layout.metric_family("val_loss") == "val_loss"


def entropy_keys(n_layer, n_head):
    return {run_layout.attn_entropy_metric(layer, head) for layer in range(n_layer) for head in range(n_head)}


def test_a_tracked_training_logs_every_heads_entropy_at_every_evaluation(finished_run):
    from llmb_mlflow.library.reader import RunReader

    client, reader = MlflowClient(finished_run.uri), RunReader(finished_run.uri)
    keys = entropy_keys(2, 2)  # TINY: two layers of two heads
    assert {k for k in client.get_run(finished_run.run_id).data.metrics if k.startswith("attn_entropy/")} == keys
    for key in keys:
        history = client.get_metric_history(finished_run.run_id, key)
        assert [m.step for m in history] == [0, 10, 20, 25], key
    for step in (0, 25):  # the values are the entropy of that step's stored attention
        expected = attention_stats.head_entropy(reader.snapshot(finished_run.run_id, step).attention)
        for (layer, head), value in np.ndenumerate(expected):
            logged = reader.value_at(finished_run.run_id, run_layout.attn_entropy_metric(layer, head), step)
            assert logged == pytest.approx(value, rel=1e-6)
            assert 0 <= logged <= attention_stats.uniform_entropy(16) + 1e-9


def test_the_tracking_helper_process_carries_the_entropy_metrics(store_uri, shakespeare):
    from llmb_mlflow import session
    from llmb_mlflow.training.corpus import prepare_dataset
    from llmb_mlflow.training.trainer import Trainer

    config = tiny_config(max_iters=10, eval_interval=5, n_layer=1)
    trainer = Trainer(config, prepare_dataset(shakespeare, config.model.block_size), device="cpu")
    outcome = session.run(trainer, session.Tracking(store_uri, "helper"), out=session.Output(print, print))
    client = MlflowClient(store_uri)
    for key in entropy_keys(1, 2):
        assert [m.step for m in client.get_metric_history(outcome.run_id, key)] == [0, 5, 10], key


def test_spooled_entropy_points_reach_the_run_when_sent(store_uri, tmp_path, monkeypatch):
    from llmb_mlflow.tracking import spool
    from llmb_mlflow.tracking.mlflow_tracker import send_spooled

    monkeypatch.setenv("LLMB_SPOOL_DIR", str(tmp_path / "spool"))
    client = MlflowClient(store_uri)
    run_id = client.create_run(client.create_experiment("spooled")).info.run_id
    key = run_layout.attn_entropy_metric(1, 0)
    points = [(key, 1.25, 1_700_000_000_000 + step, step) for step in (0, 10)]
    folder = tmp_path / "spool" / run_id
    folder.mkdir(parents=True)
    spool.write_segment(folder, 0, points)
    spool.write_manifest(folder, run_id, store_uri, "FINISHED")
    assert spool.load(folder).points == len(points)
    send_spooled(folder, store_uri)
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, key)] == [(0, 1.25), (10, 1.25)]


def test_the_small_multiples_have_a_row_per_layer_a_line_per_head_and_the_shown_step_marked():
    from dash_app.figures import entropy

    histories = {(layer, head): ([0, 10, 20], [3.0, 2.0 - layer, 1.0 + head / 10])
                 for layer in range(3) for head in range(4)}
    figure = entropy.entropy_figure(histories, 10, probe_length=64)
    layout = figure["layout"]
    rows = [key for key in layout if key.startswith("yaxis")]
    assert len(rows) == 3 and [layout[k]["title"]["text"] for k in ("yaxis", "yaxis2", "yaxis3")] == [
        "layer 1", "layer 2", "layer 3"]
    assert len(figure["data"]) == 12
    assert {(t["yaxis"], t["name"]) for t in figure["data"]} == {
        (f"y{'' if layer == 0 else layer + 1}", f"head {head + 1}") for layer in range(3) for head in range(4)}
    markers = layout["shapes"][:3]  # one per row, at the shown step
    assert [(m["x0"], m["x1"], m["yref"], m["visible"]) for m in markers] == [
        (10, 10, "y domain", True), (10, 10, "y2 domain", True), (10, 10, "y3 domain", True)]
    assert entropy.step_markers(3, 20) == [{**m, "x0": 20, "x1": 20} for m in markers]
    ceiling = attention_stats.uniform_entropy(64)
    assert [s["y0"] for s in layout["shapes"][3:]] == [ceiling] * 3  # attention spread evenly
    assert layout["yaxis"]["range"][1] >= ceiling
    point = figure["data"][1]  # layer 1, head 2
    assert point["customdata"][2][:2] == [1, 2] and point["customdata"][2][2] == pytest.approx(math.exp(1.1))
    assert "layer %{customdata[0]}, head %{customdata[1]} at step %{x}: entropy %{y:.2f} nats" in point["hovertemplate"]
    assert entropy.rows(histories) == 3


def test_a_click_on_a_point_names_its_head():
    from dash_app.figures import entropy

    assert entropy.clicked_head({"points": [{"x": 10, "customdata": [2, 3, 4.5]}]}) == (1, 2)
    for bad in (None, {}, {"points": []}, {"points": [{"customdata": ["2", 3]}]},
                {"points": [{"customdata": [0, 1]}]}, {"points": [{"customdata": [True, 1]}]},
                {"points": [{"customdata": [1, 10**9]}]}, {"points": [{"x": 3}]}):
        assert entropy.clicked_head(bad) is None, bad
