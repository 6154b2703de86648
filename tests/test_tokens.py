"""Runs whose tokens are words, not characters: a vocabulary kept once per run, snapshots of
ids, labels that show each token in every panel, and a star map of a bounded number of tokens.
The model is nanoGPT's own GPT (model.py unmodified) over a made-up vocabulary of frequent
words plus every character, recorded with ``llmb.record`` in a real sqlite store."""

import io
import re
import zipfile
from collections import Counter

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

import llmb_mlflow as llmb
from dash_app.figures.attention import detail_figure
from dash_app.figures.probability_tower import tower_figure
from dash_app.figures.star_map import star_figure
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.formats import snapshot as fmt
from llmb_mlflow.formats.vocabulary import Vocabulary, label
from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.run_layout import VOCABULARY_FILE, snapshot_path
from llmb_mlflow.training.vocabulary import TokenTokenizer, tokenizer_of

from conftest import nanogpt_module

WORDS = 300


@pytest.fixture(scope="module")
def words(shakespeare):
    """Every character of the text and its most frequent words, with and without a leading
    space; the text's first 60,000 characters as ids, taking the longest token at each place."""
    text = shakespeare.text[:60_000]
    frequent = [w for w, _ in Counter(re.findall(r"[A-Za-z]{3,}", text)).most_common(WORDS)]
    tokens = sorted(set(text)) + frequent + [" " + w for w in frequent]
    tokenizer = TokenTokenizer(Vocabulary(tokens))
    return tokens, tokenizer, tokenizer.encode(text), text


def word_gpt(vocab_size):
    gpt = nanogpt_module()
    torch.manual_seed(0)
    return gpt.GPT(gpt.GPTConfig(block_size=32, vocab_size=vocab_size, n_layer=2, n_head=2, n_embd=32,
                                 dropout=0.0, bias=False))


def test_labels_show_whitespace_shorten_long_tokens_and_never_vanish():
    assert label(" the") == "␣the" and label("\n") == "⏎" and label("\t") == "⇥"
    assert label("internationalisation") == "interna…" and label("") == "∅" and label("\x0b") == "\\x0b"
    assert label("internationalisation", 40) == "internationalisation"
    assert Vocabulary(["a", " be"]).labels([1, 0]) == ["␣be", "a"]


def test_a_vocabulary_round_trips_and_a_corrupt_one_is_one_line():
    tokens = ["\n", " the", "é", "<|endoftext|>", ""]
    assert Vocabulary.from_json(Vocabulary(tokens).to_json()).tokens == tuple(tokens)
    for bad, said in (('{"format_version": 1, "tokens": [1]}', "token 0 is a int"),
                      ('{"format_version": 9, "tokens": ["a"]}', "format version 9"),
                      ("not json", "corrupt"), ('{"format_version": 1, "tokens": []}', "no tokens")):
        with pytest.raises(LLMBError, match="the vocabulary of run r is corrupt") as refused:
            Vocabulary.from_json(bad, "the vocabulary of run r")
        assert said in str(refused.value) and "\n" not in str(refused.value)


def test_a_tokenizer_takes_the_longest_token_or_the_users_own_encode():
    words = TokenTokenizer(Vocabulary(["a", "b", " ", "ab", " ab", "abb"]))
    assert words.encode("ab abb a").tolist() == [3, 4, 1, 2, 0]
    with pytest.raises(LLMBError, match="characters not in the model's vocabulary: 'c'"):
        words.encode("abc")

    class Theirs:
        vocab_size = 3

        def decode(self, ids):
            return ["x", "yy", "x"][ids[0]]

        def encode(self, text):
            return [2] * len(text)

    theirs = tokenizer_of(Theirs())
    assert theirs.encode("xyz").tolist() == [2, 2, 2] and theirs.vocabulary.tokens == ("x", "yy", "x")
    with pytest.raises(LLMBError, match="'x' stands for more than one id; give an object whose encode"):
        tokenizer_of(["x", "yy", "x"])


def test_a_token_snapshot_keeps_ids_and_its_run_keeps_the_vocabulary(store_uri, words):
    tokens, tokenizer, ids, text = words
    model = word_gpt(len(tokens))
    probe = text[-400:]
    with llmb.record(model, tokenizer=tokens, probe_text=probe, run_name="words", sample_chars=30,
                     star_tokens=100, system_metrics=False) as rec:
        rec.snapshot(0, val_loss=6.0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        data = torch.from_numpy(ids)
        for step in range(1, 21):
            starts = torch.randint(len(data) - 33, (8,), generator=torch.Generator().manual_seed(step))
            _, loss = model(torch.stack([data[s:s + 32] for s in starts]),
                            torch.stack([data[s + 1:s + 33] for s in starts]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(step, train_loss=loss)
        rec.snapshot(20, val_loss=loss)

    client, reader = MlflowClient(store_uri), RunReader(store_uri)
    stored = client.download_artifacts(rec.run_id, snapshot_path(20))
    with zipfile.ZipFile(stored) as packed:
        assert "vocab.npy" not in packed.namelist() and "vocab_size.npy" in packed.namelist()
    assert Vocabulary.from_json(open(client.download_artifacts(rec.run_id, VOCABULARY_FILE), "rb").read()).tokens \
        == tuple(tokens)

    snap = reader.snapshot(rec.run_id, 20)
    probe_ids = tokenizer.encode(probe)[:32]
    assert snap.probe_ids.tolist() == probe_ids.tolist() and snap.probe == tokenizer.decode(probe_ids)
    assert any(len(snap.vocab[int(i)]) > 1 for i in snap.probe_ids)  # it reads words
    assert len(snap.sample_ids) == 30 and snap.sample == "".join(tokens[int(i)] for i in snap.sample_ids)
    assert snap.embedding.shape == (100, 3) and len(snap.star_ids) == 100
    assert set(snap.probe_ids.tolist()) <= set(snap.star_ids.tolist())  # the probe's tokens are among them
    assert reader.run(rec.run_id).params["vocab_size"] == str(len(tokens))

    tower = tower_figure(snap)
    shown = {cell for column in tower["data"][0]["text"] for cell in column}
    assert shown <= {label(t) for t in tokens} and "tokens" in tower["layout"]["title"]["text"]
    detail = detail_figure(snap, 1, 1)
    ticks = detail["layout"]["xaxis"]["ticktext"]
    assert ticks == [label(snap.vocab[int(snap.probe_ids[i])], 6) for i in detail["layout"]["xaxis"]["tickvals"]]
    stars = star_figure(snap)
    assert sum(len(trace["text"]) for trace in stars["data"]) == 100
    assert "word" in {trace["name"] for trace in stars["data"]}

    playground_writes_words(store_uri, rec.run_id, snap.vocab)


def playground_writes_words(uri, run_id, vocab):
    """The Playground, asked as the page asks: two words drawn after a prompt cut into tokens, the
    state keeping their ids, the bars labelled with tokens."""
    from browser import serve
    from dash_requests import CallbackPoster

    url, server = serve(uri)
    try:
        page = {"tabs.value": "playground", "view.data": {"live": False, "playing": False, "step": 20},
                "pg-temperature.value": 1.0, "run-state.data": {"run_id": run_id, "status": "FINISHED"},
                "steps.data": [0, 20], "pg-state.data": {"text": "ROMEO:", "turn": 0, "done": 0}}
        moves = {"prompt": "KING RICHARD", "seed": 0, "turn": 1, "moves": [-1, -1]}
        answer = CallbackPoster(url).post("pg-moves.data", {**page, "pg-moves.data": moves}, output="pg-state")
    finally:
        server.close()
    state, bars = answer.outputs["pg-state.data"], answer.outputs["pg-bars.figure"]["data"][0]
    prompt_ids = TokenTokenizer(vocab).encode("KING RICHARD").tolist()
    assert state["ids"][:-2] == prompt_ids and len(state["ids"]) == len(prompt_ids) + 2
    assert state["text"] == vocab.decode(state["ids"]) and state["text"].startswith("KING RICHARD")
    assert bars["y"] == [f"{label(vocab[i])} " for i in bars["customdata"]] and len(bars["y"]) == 10
    assert answer.outputs["pg-bars-title.children"] == "The ten likeliest next tokens"
    assert answer.outputs["pg-error.children"] == ""


def test_a_word_models_checkpoint_is_saved_generates_words_and_stands_in_for_step_weights(
        store_uri, words, llmb):
    from dash_app.data import ViewerData
    from dash_app.panels.playground import Models
    tokens, tokenizer, ids, text = words
    model = word_gpt(len(tokens))
    from llmb_mlflow import record

    with record(model, tokenizer=tokens, probe_text=text[-400:], run_name="word-checkpoints", sample_chars=8,
                star_tokens=50, system_metrics=False, step_weights=False) as rec:  # as a larger model's
        rec.snapshot(0, val_loss=6.0)
        rec.log(10, train_loss=5.0)
        rec.checkpoint(10)
        rec.snapshot(12, val_loss=5.5)
    reader = RunReader(store_uri)
    assert reader.checkpoint_steps(rec.run_id) == [10]
    with pytest.raises(LLMBError):
        reader.weights(rec.run_id, 12)  # no step weights were kept

    built, vocab, used = Models(ViewerData(store_uri)).at(rec.run_id, 12)
    assert used == 10 and vocab == Vocabulary(tokens) and built.cfg.vocab_size == len(tokens)
    with torch.inference_mode():
        ours = built(torch.as_tensor(ids[:32])[None])[0][0, -1]
        theirs = model(torch.as_tensor(ids[:32].astype(np.int64))[None])[0][0, -1]
    assert torch.allclose(ours, theirs, atol=1e-4)  # the checkpoint's model is the user's

    assert llmb("models", "save", rec.run_id, "--name", "words").code == 0
    written = llmb("generate", "words/1", "--prompt", "KING RICHARD", "--max-new-tokens", "5")
    assert written.code == 0 and written.out.startswith("KING RICHARD"), written.err
    continuation = written.out[len("KING RICHARD"):-1]  # (echo's newline)
    assert len(continuation) >= 5 and TokenTokenizer(Vocabulary(tokens)).unknown_chars(continuation) == []
    assert llmb("resume", "words/1", "--max-iters", "20").code == 1


def test_unsent_token_snapshots_carry_their_vocabulary_and_stored_ones_do_not(words):
    tokens, tokenizer, _, text = words
    vocab = Vocabulary(tokens)
    snap = fmt.Snapshot(step=4, vocab=vocab, prompt="\n", sample_ids=np.array([5, 400]),
                        topk_ids=np.array([[5, 6], [400, 7]]), topk_probs=np.array([[0.6, 0.3], [0.5, 0.4]]),
                        embedding=np.zeros((2, 3)), embedding_ids=np.array([5, 400]),
                        probe_ids=tokenizer.encode(text[:40])[:8], attention=np.zeros((1, 1, 8, 8)))
    stored = fmt.decode(fmt.encode(snap))
    assert stored.vocab is None and stored.vocab_size == len(tokens)
    assert stored.with_vocab(vocab).check().sample == tokens[5] + tokens[400]
    whole = fmt.decode(fmt.encode(snap, whole=True))
    assert whole.vocab == vocab and whole.embedding_ids.tolist() == [5, 400]
    odd = Vocabulary([*tokens[:-1], "end\x00"])  # a string array would lose the trailing NUL
    assert fmt.decode(fmt.encode(fmt.Snapshot(**{**snap.__dict__, "vocab": odd}), whole=True)).vocab == odd
    with pytest.raises(ValueError, match=f"vocabulary has 3 tokens, the snapshot {len(tokens)}"):
        stored.with_vocab(Vocabulary("abc"))
    chars = fmt.Snapshot(step=1, vocab="ab", prompt="a", sample_ids=np.array([1]), topk_ids=np.array([[1]]),
                         topk_probs=np.array([[1.0]]), embedding=np.zeros((2, 3)), probe_ids=np.array([0, 1]),
                         attention=np.zeros((1, 1, 2, 2)))
    with np.load(io.BytesIO(fmt.encode(chars))) as arrays:  # a character run's snapshots are as they were
        assert int(arrays["format_version"]) == 1 and str(arrays["vocab"]) == "ab"
    nul = fmt.Snapshot(**{**chars.__dict__, "vocab": Vocabulary("a\x00")})  # a character a str array would drop
    assert fmt.decode(fmt.encode(nul)).vocab == Vocabulary("a\x00")
