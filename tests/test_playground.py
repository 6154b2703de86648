"""The Token Playground's model: the weights stored at each evaluation, and what the model as it
was then says comes next (checked against what the training itself recorded)."""

import io

import numpy as np
import pytest

from llmb_mlflow.errors import LLMBError


@pytest.fixture(scope="module")
def stored(finished_run):
    from llmb_mlflow.library.reader import RunReader

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
    from llmb_mlflow.training import weights
    from llmb_mlflow.run_layout import weights_path

    from dataclasses import asdict, replace

    from llmb_mlflow.training.config import build_config
    from llmb_mlflow.training.model import MicroGPT

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


def test_deflated_weights_are_read_and_another_format_or_a_wrong_layout_is_refused(stored):
    import json
    import zipfile

    from llmb_mlflow.training import weights
    from llmb_mlflow.run_layout import weights_path

    reader, run_id, steps = stored
    written = reader.artifact_bytes(run_id, weights_path(steps[-1]))
    config, state = weights.decode(written)
    deflated = io.BytesIO()  # as runs stored before weights were written undeflated
    with zipfile.ZipFile(io.BytesIO(written)) as source, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as copy:
        for entry in source.infolist():
            copy.writestr(entry.filename, source.read(entry))
    assert len(deflated.getvalue()) < len(written)
    _, deflated_state = weights.decode(deflated.getvalue())
    assert all(np.array_equal(deflated_state[name], state[name]) for name in state)
    for version in (1, 3):  # an array per tensor, as format 1 was; a format from a newer program
        buffer = io.BytesIO()
        np.savez_compressed(buffer, format_version=np.int32(version), model_config=np.str_(json.dumps(vars(config))),
                            **{name: array.astype(np.float16) for name, array in state.items()})
        with pytest.raises(weights.OtherVersion) as refused:
            weights.decode(buffer.getvalue(), "w")
        assert str(refused.value) == f"w is format version {version}; this program reads 2"
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


def test_the_bars_show_the_ten_likeliest_likeliest_on_top():
    from dash_app.panels.playground import bars_figure, shown_text
    from llmb_mlflow.formats.vocabulary import Vocabulary

    vocab = "abcdefghijkl\n"
    p = np.arange(1, 14, dtype=float)
    p /= p.sum()
    bars = bars_figure(vocab, p, 0.8)["data"][0]
    assert bars["y"][0] == "⏎ " and bars["customdata"][:2] == [12, 11] and len(bars["x"]) == 10
    assert bars["x"] == sorted(bars["x"], reverse=True)
    chars = Vocabulary("abcdx")
    old, context = shown_text(chars, [4] * 20 + [0, 1, 2, 3], 4)
    assert old.children == "x" * 20 and context.children == "abcd" and context.title.endswith("last 4 characters")
    words = Vocabulary(["the", " cat", " sat", "\n"])
    old, context = shown_text(words, [0, 1, 2, 3, 0, 1], 3)  # the last 3 tokens, not characters
    assert old.children == "the cat sat" and context.children == "\nthe cat" and context.title.endswith("3 tokens")


CHARS = "abcdefgh"


def _vocab():
    from llmb_mlflow.formats.vocabulary import Vocabulary

    return Vocabulary(CHARS)


def _advance(state, wanted, vocab=None, next_id=None):
    from dash_app.panels.playground import advance, encoder

    vocab = vocab or _vocab()
    return advance(state, wanted, vocab, next_id or _next, encoder(vocab))


def _next(ids):  # a stand-in for the model's draw: deterministic in the text so far
    return (sum(ids) * 7 + len(ids)) % len(CHARS)


def _moves(moves, prompt="ab", turn=0, seed=0):
    return {"prompt": prompt, "seed": seed, "turn": turn, "moves": moves}


def test_each_move_is_applied_once_in_order_whatever_requests_were_superseded():
    from dash_app.panels.playground import DRAW

    start = {"text": "ab", "turn": 0, "done": 0}
    moves = [DRAW, DRAW, 3, DRAW, DRAW]
    one_by_one = start
    for n in range(1, len(moves) + 1):  # every answer arrived before the next click
        one_by_one, _ = _advance(one_by_one, _moves(moves[:n]))
    assert len(one_by_one["text"]) == 2 + len(moves) and one_by_one["done"] == len(moves)
    assert one_by_one["text"][4] == "d"  # the picked character, in its place
    at_once, ids = _advance(start, _moves(moves))  # every answer but the last dropped
    assert at_once == one_by_one and ids == [CHARS.index(c) for c in at_once["text"]]
    middle, _ = _advance(start, _moves(moves[:2]))  # one answer in between
    assert _advance(middle, _moves(moves))[0] == one_by_one
    assert _advance(one_by_one, _moves(moves))[0] == one_by_one  # asked again: nothing more


def test_a_new_turn_starts_from_the_prompt_and_bad_moves_are_bounded():
    from dash_app.panels.playground import DRAW, MAX_PENDING, MAX_TEXT

    written = {"text": "abcdef", "turn": 0, "done": 4}
    assert _advance(written, _moves([], "ba", turn=1))[0] == {"text": "ba", "ids": [1, 0], "turn": 1, "done": 0}
    assert _advance(written, _moves([DRAW], "ab", turn=1))[0]["text"] == "ab" + CHARS[_next([0, 1])]
    fresh = {"text": "ab", "turn": 0, "done": 0}
    assert _advance(written, _moves([DRAW] * 2)) == _advance(fresh, _moves([DRAW] * 2))
    other_run = {"text": "abXY", "turn": 0, "done": 2}  # characters the shown model lacks: from the prompt
    assert _advance(other_run, _moves([DRAW, DRAW]))[0] == {"text": "ab", "ids": [0, 1], "turn": 0, "done": 2}
    assert _advance(fresh, _moves([8, 100, 2]))[0]["text"] == "abc"  # no such characters: skipped
    many, _ = _advance(fresh, _moves([0] * (MAX_PENDING + 5)))
    assert len(many["text"]) == 2 + MAX_PENDING and many["done"] == MAX_PENDING + 5
    full = {"text": "a" * MAX_TEXT, "turn": 0, "done": 0}
    assert _advance(full, _moves([DRAW, 1], "a"))[0]["text"] == "a" * MAX_TEXT


def test_a_text_of_tokens_keeps_the_ids_it_was_written_in():
    from dash_app.panels.playground import DRAW
    from llmb_mlflow.errors import LLMBError
    from llmb_mlflow.formats.vocabulary import Vocabulary

    words = Vocabulary(["th", "e", "the", " ", "cat", "\n"])
    drawn = _advance({"text": "the", "turn": 0, "done": 0}, _moves([DRAW, 4], "the"), words, lambda ids: 3)[0]
    assert drawn["ids"] == [2, 3, 4] and drawn["text"] == "the cat"  # the prompt cut by longest match
    written = {"text": "the", "ids": [0, 1], "turn": 0, "done": 0}  # the model wrote "th" then "e"
    assert _advance(written, _moves([4], "th"), words)[0] == {"text": "thecat", "ids": [0, 1, 4], "turn": 0, "done": 1}
    stale = {"text": "the", "ids": [0, 0], "turn": 0, "done": 0}  # ids of another run: cut again
    assert _advance(stale, _moves([], "th"), words)[0]["ids"] == [2]
    from dash_app.panels.playground import encoder

    with pytest.raises(LLMBError, match="the prompt has characters no token of this model has: 'x'"):
        encoder(words)("the x")


def test_swapping_steps_in_the_one_built_model_gives_each_steps_own_model(stored, finished_run):
    from dash_app.data import ViewerData
    from dash_app.panels.playground import Models, build_model, next_probabilities

    reader, run_id, steps = stored
    size = sum(array.nbytes for array in reader.weights(run_id, steps[0])[1].values())
    models = Models(ViewerData(finished_run.uri), cache_bytes=2 * size)  # two steps kept: others read again
    prompt = [0, 5, 9, 3]
    fresh = {step: next_probabilities(build_model(*reader.weights(run_id, step)), prompt, 0.7) for step in steps}
    for step in [*steps, steps[0], *steps[::-1]]:
        model, vocab, used = models.at(run_id, step)
        assert used == step and vocab == reader.snapshot(run_id, step).vocab
        assert np.array_equal(next_probabilities(model, prompt, 0.7), fresh[step]), step
        assert np.array_equal(models.probabilities(run_id, step, prompt, 0.7), fresh[step]), step
    assert len({id(models.at(run_id, step)[0]) for step in steps}) == 1
    uncached = Models(ViewerData(finished_run.uri), cache_bytes=size - 1)  # weights larger than the cache
    assert np.array_equal(next_probabilities(uncached.at(run_id, steps[0])[0], prompt, 0.7), fresh[steps[0]])


def test_a_run_that_keeps_weights_only_in_checkpoints_plays_its_last_checkpoint(store_uri, shakespeare):
    from dash_app.data import ViewerData
    from dash_app.panels.playground import Models, _which_model, next_probabilities
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker
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
    model, vocab, used = Models(data).at(tracker.run_id, 25)
    assert used == 20 and vocab == data.snapshot(tracker.run_id, 20).vocab
    assert next_probabilities(model, [0, 1], 1.0).sum() == pytest.approx(1.0)
    assert "step 20, its last checkpoint by step 25" in _which_model(25, 20)


def test_weights_of_another_format_are_played_from_the_checkpoint_before_them(store_uri, shakespeare):
    from mlflow import MlflowClient

    from dash_app.data import ViewerData
    from dash_app.panels.playground import Models
    from llmb_mlflow.run_layout import weights_path
    from llmb_mlflow.tracking.mlflow_tracker import MlflowTracker

    from conftest import train_tiny

    tracker = MlflowTracker(store_uri)
    train_tiny(shakespeare, tracker, max_iters=20, eval_interval=5, checkpoint_interval=10)
    folder = MlflowClient(store_uri).get_run(tracker.run_id).info.artifact_uri.removeprefix("file://")
    older = io.BytesIO()  # a file of format 1, an array per tensor, as runs of early December stored
    np.savez(older, format_version=np.int32(1), model_config=np.str_("{}"), w=np.zeros(2, np.float16))
    with open(f"{folder}/{weights_path(15)}", "wb") as f:
        f.write(older.getvalue())
    model, vocab, used = Models(ViewerData(store_uri)).at(tracker.run_id, 15)
    assert used == 10 and model is not None and len(vocab) > 10


def test_crafted_moves_get_one_line_and_change_nothing(finished_run):
    from browser import serve
    from dash_requests import CallbackPoster

    url, server = serve(finished_run.uri)
    try:
        poster = CallbackPoster(url)
        page = {"tabs.value": "playground", "view.data": {"live": False, "playing": False, "step": 20},
                "pg-temperature.value": 1.0, "run-state.data": {"run_id": finished_run.run_id, "status": "FINISHED"},
                "steps.data": [0, 10, 20, 25], "pg-state.data": {"text": "ROMEO:", "turn": 0, "done": 0}}
        moves = {"prompt": "ROMEO:", "seed": 0, "turn": 0, "moves": [-1, -1]}
        answer = poster.post("pg-moves.data", {**page, "pg-moves.data": moves}, output="pg-state")
        written = answer.outputs["pg-state.data"]
        assert written == {"text": written["text"], "ids": written["ids"], "turn": 0, "done": 2}
        assert len(answer.outputs["pg-state.data"]["text"]) == len("ROMEO:") + 2
        for crafted in ("moves", {**moves, "moves": [-1] * 5000}, {**moves, "moves": [2**20]},
                        {**moves, "moves": ["-1"]}, {**moves, "prompt": "x" * 600}, {**moves, "seed": -1}):
            answer = poster.post("pg-moves.data", {**page, "pg-moves.data": crafted}, output="pg-state")
            assert list(answer.outputs) == ["pg-error.children"], crafted
            assert answer.outputs["pg-error.children"].startswith(
                "Cannot use the playground: the playground's list of moves is malformed"), crafted
    finally:
        server.close()
