"""``llmb.record``: a training loop its user wrote (here around nanoGPT's own GPT, its model.py
unmodified from ../shared/clients), recorded in a real sqlite store through the tracking
helper: every step, snapshots with nanoGPT's attention and star map, control from outside, and
one-line refusals of what cannot be recorded."""

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

import llmb_mlflow as llmb
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.library import control
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.run_layout import KIND_TAG, TRAINING_RUN

from conftest import nanogpt_module, until


@pytest.fixture(scope="module")
def gpt_module():
    return nanogpt_module()


@pytest.fixture(scope="module")
def chars(shakespeare):
    """nanoGPT's shakespeare_char preparation: the sorted characters, itos and the ids."""
    text = shakespeare.text
    vocab = sorted(set(text))
    itos = dict(enumerate(vocab))
    stoi = {c: i for i, c in itos.items()}
    return itos, np.array([stoi[c] for c in text[:200_000]], dtype=np.int64), text


def small_gpt(gpt_module, seed=0):
    torch.manual_seed(seed)
    return gpt_module.GPT(gpt_module.GPTConfig(block_size=32, vocab_size=65, n_layer=2, n_head=2, n_embd=32,
                                               dropout=0.0, bias=False))


def batch(ids, generator, size=8, block=32):
    starts = torch.randint(len(ids) - block - 1, (size,), generator=generator)
    data = torch.from_numpy(ids)
    return (torch.stack([data[s:s + block] for s in starts]), torch.stack([data[s + 1:s + block + 1] for s in starts]))


def users_loop(model, ids, rec, steps, eval_every, on_step=None):
    """A training loop as its user writes it, with the three lines that record it."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    done = 0
    for step in range(steps + 1):
        if step % eval_every == 0:
            model.eval()
            with torch.no_grad():
                _, val = model(*batch(ids, generator))
            model.train()
            rec.snapshot(step, val_loss=val)
        if step == steps:
            break
        _, loss = model(*batch(ids, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rec.log(step + 1, train_loss=loss.item())
        done = step + 1
        if on_step:
            on_step(step + 1)
        if rec.stop_requested:
            break
    return done


def test_a_nanogpt_training_is_recorded_step_by_step_with_its_attention_and_star_map(store_uri, gpt_module, chars):
    itos, ids, text = chars
    model = small_gpt(gpt_module)
    with llmb.record(model, tokenizer=itos, probe_text=text[-500:], experiment="mine", run_name="nano",
                     params={"n_layer": 2, "lr": 3e-3, "max_iters": 30}, sample_chars=40) as rec:
        users_loop(model, ids, rec, steps=30, eval_every=10)
    reader = RunReader(store_uri)
    run = reader.run(rec.run_id)
    assert run.status == "FINISHED" and run.tags[KIND_TAG] == TRAINING_RUN and run.run_name == "nano"
    assert run.params["model"] == "GPT" and run.params["n_head"] == "2" and run.params["lr"] == "0.003"
    assert reader.metric(rec.run_id, "train_loss").steps.tolist() == list(range(1, 31))
    assert reader.metric(rec.run_id, "val_loss").steps.tolist() == [0, 10, 20, 30]
    assert reader.snapshot_steps(rec.run_id) == [0, 10, 20, 30]
    first, last = reader.snapshot(rec.run_id, 0), reader.snapshot(rec.run_id, 30)
    assert last.attention.shape == (2, 2, 32, 32) and last.embedding.shape == (65, 3)
    assert np.allclose(last.attention.astype(np.float32).sum(-1), 1, atol=1e-2)
    assert len(last.sample) == 40 and last.probe == text[-500:][:32]
    assert not np.array_equal(first.topk_probs, last.topk_probs)  # it learned something
    assert reader.metric(rec.run_id, "attn_entropy/l1h1").steps.tolist() == [0, 10, 20, 30]


def test_a_recorded_training_stops_when_asked_from_outside(store_uri, gpt_module, chars):
    itos, ids, text = chars
    model = small_gpt(gpt_module)
    client = MlflowClient(store_uri)
    asked = []

    def ask_to_stop(step):  # once the helper has made the run, as `llmb runs stop` would
        if step >= 3 and rec.run_id and not asked:
            control.send(client, rec.run_id, "stop")
            asked.append(step)

    with llmb.record(model, tokenizer=itos, probe_text=text[:64], system_metrics=False) as rec:
        done = users_loop(model, ids, rec, steps=100_000, eval_every=1000, on_step=ask_to_stop)
    assert asked and asked[0] <= done < 100_000
    run = RunReader(store_uri).run(rec.run_id)
    assert run.status == "KILLED" and run.last_step == done


def test_checkpoints_of_a_recorded_nanogpt_are_logged_models_used_like_ours_but_not_resumed(
        store_uri, gpt_module, chars, llmb):
    itos, ids, text = chars
    model = small_gpt(gpt_module)
    client = MlflowClient(store_uri)
    asked = []

    def ask_for_a_checkpoint(step):  # as the viewer's "Checkpoint now" or `llmb runs checkpoint` would
        if step >= 3 and not asked:
            until(lambda: rec.run_id, what="the tracking helper to make the run")
            control.send(client, rec.run_id, "checkpoint")
            asked.append(step)
            until(lambda: rec.tracker.control().checkpoints == 1, what="the request to reach the training")

    with llmb_record(model, itos, text) as rec:
        users_loop(model, ids, rec, steps=12, eval_every=6, on_step=ask_for_a_checkpoint)
        rec.checkpoint(12)
        with pytest.raises(LLMBError, match="checkpoint step 12 is not after the last one, 12"):
            rec.checkpoint(12)
    reader = RunReader(store_uri)
    steps = reader.checkpoint_steps(rec.run_id)
    assert steps[-1] == 12 and len(steps) == 2 and asked[0] <= steps[0] < 12  # the one asked for, then the last
    saved = llmb("models", "save", rec.run_id, "--name", "nano")
    assert saved.code == 0, saved.err
    written = llmb("generate", "nano/1", "--prompt", "ROMEO:", "--max-new-tokens", "20")
    assert written.code == 0 and written.out.startswith("ROMEO:"), written.err
    resumed = llmb("resume", "nano/1", "--max-iters", "20")
    assert resumed.code == 1 and "recorded with llmb.record from a training script of its own" in resumed.err
    assert len(resumed.err.strip().splitlines()) == 1


def test_a_model_this_package_cannot_run_gets_no_checkpoint_in_one_line(store_uri, gpt_module, chars):
    itos, _, text = chars
    torch.manual_seed(0)
    biased = gpt_module.GPT(gpt_module.GPTConfig(block_size=32, vocab_size=65, n_layer=1, n_head=2, n_embd=16,
                                                 dropout=0.0, bias=True))
    with llmb_record(biased, itos, text) as rec:
        with pytest.raises(LLMBError, match="checkpoints are kept of models this package can run .* a GPT is not one"):
            rec.checkpoint(1)
        rec.log(1, train_loss=4.0)
    assert RunReader(store_uri).checkpoint_steps(rec.run_id) == []


def llmb_record(model, itos, text):
    return llmb.record(model, tokenizer=itos, probe_text=text[:64], system_metrics=False)


def test_an_error_in_the_users_step_ends_the_run_failed_and_keeps_what_it_logged(store_uri, gpt_module, chars):
    itos, ids, text = chars
    model = small_gpt(gpt_module)
    with pytest.raises(RuntimeError, match="out of batteries"):
        with llmb.record(model, tokenizer=itos, probe_text=text[:64], system_metrics=False) as rec:
            rec.log(1, train_loss=4.2)
            rec.log(2, train_loss=4.1)
            raise RuntimeError("out of batteries")
    reader = RunReader(store_uri)
    run = reader.run(rec.run_id)
    assert run.status == "FAILED" and run.tags["llmb.failure"] == "RuntimeError: out of batteries"
    assert reader.metric(rec.run_id, "train_loss").steps.tolist() == [1, 2]
    from browser import serve
    from dash_requests import CallbackPoster

    url, server = serve(store_uri)
    try:
        shown = CallbackPoster(url).post("run.value", {"run.value": rec.run_id, "smoothing.value": 0.6},
                                         output="loss-chart")
        assert shown.outputs["run-error.children"] == "The training failed: RuntimeError: out of batteries"
    finally:
        server.close()


@pytest.mark.parametrize("options, said", [
    ({"tokenizer": None}, "tokenizer= must be a str of characters or a list of token strings in id order"),
    ({"tokenizer": ["a", 3]}, "tokenizer=: id 1 is 3, not a string"),
    ({"tokenizer": "abca"}, "tokenizer=: 'a' stands for more than one id"),
    ({"tokenizer": {0: "a", 2: "b"}}, "tokenizer=: a dict's keys must be the ids 0 to 1"),
    ({"probe_text": "ROMEO ☃"}, "probe_text=: characters not in the model's vocabulary: '☃'"),
    ({"star_tokens": [70]}, "star_tokens= must list at most 5000 ids from 0 to 64; got [70]"),
    ({"probe_text": ""}, "probe_text= must be text the model can read; got ''"),
    ({"probe_text": "R"}, "probe_text= must be at least 2 tokens long; got 'R'"),
    ({"star_tokens": 6000}, "star_tokens= must be from 1 to 5000; got 6000"),
    ({"temperature": 0}, "temperature= must be a number in (0, 10]; got 0"),
    ({"params": ["lr", 1]}, "params= must be a dict of settings; got a list"),
    ({"step_weights": "yes"}, "step_weights= must be True or False; got 'yes'"),
])
def test_what_cannot_be_recorded_is_refused_in_one_line_before_a_run_is_made(store_uri, gpt_module, chars, options,
                                                                              said):
    itos, _, text = chars
    given = {"tokenizer": itos, "probe_text": text[:64], **options}
    with pytest.raises(LLMBError) as refused:
        llmb.record(small_gpt(gpt_module), given.pop("tokenizer"), given.pop("probe_text"), **given)
    assert str(refused.value).startswith(said) and "\n" not in str(refused.value)
    client = MlflowClient(store_uri)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_a_model_nothing_can_see_inside_and_use_outside_a_with_are_one_line(store_uri, chars):
    itos, _, text = chars
    with pytest.raises(LLMBError, match="cannot see inside a Linear: give view="):
        llmb.record(torch.nn.Linear(2, 2), itos, text[:64])


def test_snapshot_steps_must_grow(store_uri, gpt_module, chars):
    itos, _, text = chars
    model = small_gpt(gpt_module)
    rec = llmb.record(model, itos, text[:64], system_metrics=False)
    with pytest.raises(LLMBError, match="use record"):
        rec.log(1, train_loss=1.0)
    with pytest.raises(LLMBError, match="snapshot step 5 is not after the last one, 10"):
        with rec:
            rec.snapshot(10)
            rec.snapshot(5)
    reader = RunReader(store_uri)
    assert reader.snapshot_steps(rec.run_id) == [10] and reader.run(rec.run_id).status == "FAILED"


class Bigram(torch.nn.Module):
    """A model of its user's own, seen through a view: logits only, no attention, no embedding."""

    def __init__(self, vocab=65):
        super().__init__()
        self.table = torch.nn.Parameter(torch.zeros(vocab, vocab))

    def forward(self, ids):
        return self.table[ids]


class BigramView:
    block_size = 16

    def __init__(self, model):
        self.model = model

    def logits(self, ids):
        return self.model(ids)

    def attention(self, ids):
        return None

    def embedding(self):
        return None


def test_a_model_without_attention_or_embedding_is_recorded_and_the_viewer_says_so(store_uri, chars):
    from browser import serve
    from dash_requests import CallbackPoster

    itos, _, text = chars
    model = Bigram()
    with llmb.record(model, itos, text[:64], view=BigramView(model), system_metrics=False) as rec:
        rec.snapshot(0, val_loss=4.17)
        with torch.no_grad():
            model.table[:, 0] += 50  # it "learns" to say the first character
        rec.snapshot(1, val_loss=1.0)
    reader = RunReader(store_uri)
    snap = reader.snapshot(rec.run_id, 1)
    assert snap.attention.shape == (0, 0, 16, 16) and snap.embedding.shape == (0, 3)
    assert set(snap.sample) == {itos[0]} and reader.run(rec.run_id).params["n_layer"] == "0"
    url, server = serve(store_uri)
    try:
        page = CallbackPoster(url)
        shown = page.post("run.value", {"run.value": rec.run_id, "smoothing.value": 0.6}, output="loss-chart")
        state, steps = shown.outputs["run-state.data"], shown.outputs["steps.data"]
        assert steps == [0, 1] and not shown.outputs.get("run-error.children")
        assert shown.outputs["layer.options"] == shown.outputs["head.options"] == []  # no layer "1" to pick
        assert shown.outputs["layer.value"] is None
        for tab, output, said in (("watch", "stars", "no star map"), ("attention", "attention-grid", "no attention")):
            answer = page.post("view.data", {"view.data": {"step": 1, "live": False}, "temperature.value": 1,
                                             "tabs.value": tab, "run-state.data": state, "steps.data": steps,
                                             "layer.value": 0, "head.value": 0}, output=output)
            assert answer.status == 200 and not answer.outputs.get("run-error.children"), answer.text[:300]
            [note] = answer.outputs[f"{output}.figure"]["layout"]["annotations"]
            assert said in note["text"]
    finally:
        server.close()


def test_a_recording_is_used_once_and_bad_steps_or_metrics_are_one_line(store_uri, gpt_module, chars):
    itos, _, text = chars
    rec = llmb.record(small_gpt(gpt_module), itos, text[:64], system_metrics=False).start()
    with pytest.raises(LLMBError, match="has started already"):
        rec.start()
    for step, metrics, said in ((1.5, {}, "step must be a whole number; got 1.5"), (-1, {}, "step must be 0 or more"),
                                (1, {"train_loss": "low"}, "metric train_loss= must be a number; got 'low'"),
                                (1, {"train_loss": torch.ones(3)}, "metric train_loss= must be one number")):
        with pytest.raises(LLMBError, match=said):
            rec.log(step, **metrics)
    rec.log(1, train_loss=torch.tensor(2.5))
    rec.finish()
    with pytest.raises(LLMBError, match="has ended"):
        rec.log(2, train_loss=1.0)
    assert RunReader(store_uri).metric(rec.run_id, "train_loss").values.tolist() == [2.5]


def test_the_own_model_example_records_a_model_of_its_own_through_a_view(store_uri, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from dash_app.data import ViewerData
    from dash_app.panels.playground import Models

    example = Path(__file__).resolve().parent.parent / "docs" / "examples" / "own_model.py"
    done = subprocess.run([sys.executable, str(example), "--steps", "20", "--tracking-uri", store_uri],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.strip().splitlines()[-1].removeprefix("recorded run ")
    reader = RunReader(store_uri)
    run = reader.run(run_id)
    assert run.status == "FINISHED" and run.params["model"] == "TinyTransformer" and run.last_step == 20
    assert reader.snapshot_steps(run_id) == [0, 20]
    snap = reader.snapshot(run_id, 20)
    assert snap.attention.shape == (1, 4, 64, 64) and snap.embedding.shape == (len(snap.vocab), 3)
    with pytest.raises(LLMBError, match="kept no weights by step 20 that the Playground can run"):
        Models(ViewerData(store_uri)).at(run_id, 20)
