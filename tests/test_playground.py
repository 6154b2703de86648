"""The Token Playground's model: the weights stored at each evaluation, and what the model as it
was then says comes next (checked against what the training itself recorded)."""

import numpy as np
import pytest

from llmb_mlflow.errors import LLMBError


@pytest.fixture(scope="module")
def stored(finished_run):
    from llmb_mlflow.reader import RunReader

    reader = RunReader(finished_run.uri)
    return reader, finished_run.run_id, reader.snapshot_steps(finished_run.run_id)


def test_every_stored_step_gives_what_its_snapshot_recorded(stored):
    from dash_app.panels.playground import build_model, next_probabilities

    reader, run_id, steps = stored
    assert len(steps) >= 3
    models = []
    for step in steps:
        snap = reader.snapshot(run_id, step)
        model = build_model(*reader.weights(run_id, step))
        models.append(model)
        prompt = [snap.vocab.index(c) for c in snap.prompt]
        block = model.cfg.block_size
        for i in range(block - len(prompt) + 1):  # the positions whose context the sampler did not cut
            probabilities = next_probabilities(model, prompt + [int(c) for c in snap.sample_ids[:i]], 1.0)
            recorded = snap.topk_probs[i].astype(np.float64)  # float16: within 0.0005
            assert np.abs(probabilities[snap.topk_ids[i]] - recorded).max() < 0.0015, (step, i)
    prompt = [0, 1, 2]
    assert not np.allclose(next_probabilities(models[0], prompt, 1.0), next_probabilities(models[-1], prompt, 1.0))


def test_half_precision_weights_keep_the_top_ten_within_a_thousandth(stored, finished_run):
    from dash_app.panels.playground import build_model, next_probabilities

    reader, run_id, steps = stored
    full = finished_run.trainer.model.eval()
    half = build_model(*reader.weights(run_id, steps[-1]))
    text = finished_run.trainer.dataset.val_ids[:200].tolist()
    for end in range(1, len(text), 7):
        exact = next_probabilities(full, text[:end], 1.0)
        top = np.argsort(exact)[::-1][:10]
        assert np.abs(next_probabilities(half, text[:end], 1.0)[top] - exact[top]).max() < 0.001


def test_weights_are_small_and_load_without_running_code(stored):
    from llmb_mlflow import weights
    from llmb_mlflow.run_layout import weights_path

    from dataclasses import asdict, replace

    from llmb_mlflow.config import build_config
    from llmb_mlflow.model import MicroGPT

    reader, run_id, steps = stored
    raw = reader.artifact_bytes(run_id, weights_path(steps[-1]))
    config, state = weights.decode(raw)
    assert config.block_size == 16 and all(a.dtype == np.float32 for a in state.values())
    medium = replace(build_config("medium").model, vocab_size=65)
    trained_like = {k: v.numpy() for k, v in MicroGPT(medium).state_dict().items()}
    assert len(weights.encode(trained_like, asdict(medium))) <= 0.5 * 2**20  # the bound
    for bad in (b"", b"not a zip", raw[: len(raw) // 2]):
        with pytest.raises(LLMBError, match="corrupt or unreadable"):
            weights.decode(bad, "w")


def test_weights_of_the_first_format_an_array_per_tensor_are_still_read(stored):
    import io
    import json

    from llmb_mlflow import weights
    from llmb_mlflow.run_layout import weights_path

    reader, run_id, steps = stored
    config, state = weights.decode(reader.artifact_bytes(run_id, weights_path(steps[-1])))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format_version=np.int32(1), model_config=np.str_(json.dumps(vars(config))),
                        **{name: array.astype(np.float16) for name, array in state.items()})
    old_config, old_state = weights.decode(buffer.getvalue())
    assert old_config == config and list(old_state) == list(state)
    assert all(np.array_equal(old_state[name], state[name]) for name in state)
    layout = [[name, list(array.shape)] for name, array in state.items()]
    layout[0][1] = [1, 1]  # a layout that does not add up to the stored numbers
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format_version=np.int32(2), model_config=np.str_(json.dumps(vars(config))),
                        layout=np.str_(json.dumps(layout)), weights=np.zeros(5, np.float16))
    with pytest.raises(LLMBError, match="corrupt or unreadable .*the layout holds"):
        weights.decode(buffer.getvalue(), "w")


def test_a_draw_is_the_same_for_the_same_seed_and_position():
    from dash_app.panels.playground import draw

    p = np.full(10, 0.1)
    assert draw(p, 3, 7) == draw(p, 3, 7)
    assert len({draw(p, seed, 7) for seed in range(30)}) > 3
    assert draw(np.eye(10)[4], 1, 1) == 4


def test_the_bars_show_the_ten_likeliest_and_a_click_names_one():
    from dash_app.panels.playground import _picked, bars_figure, shown_text

    vocab = "abcdefghijkl\n"
    p = np.arange(1, 14, dtype=float)
    p /= p.sum()
    bars = bars_figure(vocab, p, 0.8)["data"][0]
    assert bars["y"][0] == "⏎ " and bars["customdata"][:2] == [12, 11] and len(bars["x"]) == 10
    assert bars["x"] == sorted(bars["x"], reverse=True)
    assert _picked({"points": [{"customdata": 3}]}, 13) == 3
    for bad in (None, {"points": [{"customdata": 13}]}, {"points": [{"customdata": "3"}]},
                {"points": [{"customdata": True}]}, {"points": []}):
        assert _picked(bad, 13) is None
    old, context = shown_text("x" * 20 + "abcd", 4)
    assert old.children == "x" * 20 and context.children == "abcd"


def test_a_run_that_keeps_weights_only_in_checkpoints_plays_its_last_checkpoint(store_uri, shakespeare):
    from dash_app.data import ViewerData
    from dash_app.panels.playground import _which_model, from_checkpoint, next_probabilities
    from llmb_mlflow.mlflow_tracker import MlflowTracker
    from llmb_mlflow.run_layout import WEIGHTS_DIR

    from conftest import train_tiny

    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, max_iters=20, step_weights=False)
    data = ViewerData(store_uri)
    assert WEIGHTS_DIR not in {a.path for a in data.reader.client.list_artifacts(tracker.run_id)}
    with pytest.raises(LLMBError):
        data.weights(tracker.run_id, 10)
    with pytest.raises(LLMBError, match="only in checkpoints, and has none by step 10"):
        data.checkpoint_before(tracker.run_id, 10)
    used, raw = data.checkpoint_before(tracker.run_id, 20)
    model, vocab = from_checkpoint(raw, "checkpoint")
    assert used == 20 and vocab == data.snapshot(tracker.run_id, 20).vocab
    assert next_probabilities(model, [0, 1], 1.0).sum() == pytest.approx(1.0)
    assert "step 20, its last checkpoint by step 25" in _which_model(25, 20)
