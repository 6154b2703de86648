import numpy as np
import pytest
import torch

from llmb_mlflow.formats import snapshot as fmt
from llmb_mlflow.training.config import build_config
from llmb_mlflow.training.corpus import prepare_dataset
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.training.probes import PROBE_CHARS, TOP_K, SnapshotProbe
from llmb_mlflow.training.trainer import Trainer


@pytest.fixture(scope="module")
def trainer(shakespeare):
    config = build_config("small", n_layer=2, n_embd=32, block_size=32, sample_chars=50, batch_size=8)
    t = Trainer(config, prepare_dataset(shakespeare, 32), device="cpu")
    for _ in range(3):
        t.train_step()
    return t


def test_snapshot_shapes_and_invariants(trainer):
    snap = trainer.probe.capture(trainer.model, 3)
    v = len(snap.vocab)
    assert snap.step == 3 and v == 65 and snap.prompt == "\n"
    assert snap.sample_ids.shape == (50,) and len(snap.sample) == 50
    assert snap.topk_ids.shape == snap.topk_probs.shape == (50, TOP_K)
    probs = snap.topk_probs.astype(np.float64)
    assert np.all(np.diff(probs, axis=1) <= 0), "top-k sorted, most likely first"
    assert np.all(probs <= 1) and np.all(probs.sum(axis=1) <= 1 + 1e-3)
    assert snap.embedding.shape == (v, 3)
    assert snap.attention.dtype == np.float16
    assert snap.attention.shape == (2, 4, 32, 32)
    att = snap.attention.astype(np.float32)
    assert np.allclose(att.sum(-1), 1, atol=1e-2)
    assert np.all(np.triu(att, k=1) == 0)
    assert len(snap.probe) == 32 and snap.probe in trainer.dataset.val_text


def test_samples_and_probe_are_reproducible_and_do_not_disturb_training(trainer):
    rng_before = trainer.batch_rng.get_state()
    a = trainer.probe.capture(trainer.model, 3)
    b = trainer.probe.capture(trainer.model, 3)
    assert a.sample == b.sample and a.probe == b.probe
    assert torch.equal(rng_before, trainer.batch_rng.get_state())
    assert trainer.model.training


def test_recorded_probabilities_are_the_models_next_character_distribution(trainer):
    snap = trainer.probe.capture(trainer.model, 3)
    tok, model = trainer.dataset.tokenizer, trainer.model.eval()
    with torch.no_grad():
        for i in range(0, 31, 5):  # positions whose context still fits the block
            context = torch.tensor(tok.encode(snap.prompt + snap.sample[:i]).astype(np.int64))[None]
            probs = model(context)[0][0, -1].softmax(-1)
            top = probs.topk(TOP_K)
            assert np.array_equal(top.indices.numpy(), snap.topk_ids[i])
            assert np.allclose(top.values.numpy(), snap.topk_probs[i], atol=1e-3)
    trainer.model.train()


def test_embedding_axes_do_not_flip_between_steps(trainer, shakespeare):
    probe = SnapshotProbe.of_dataset(trainer.dataset, 32, 10, 0.8, 1)
    weights = trainer.model.tok_emb.weight.detach().numpy()
    first = probe._project(weights)
    nudged = probe._project(weights + np.random.default_rng(0).normal(0, 1e-4, weights.shape))
    assert np.abs(first - nudged).max() < 0.05 * np.abs(first).max()


def test_probe_length_is_capped():
    assert PROBE_CHARS == 64


def test_encode_decode_round_trip(trainer):
    snap = trainer.probe.capture(trainer.model, 3)
    back = fmt.decode(fmt.encode(snap))
    assert back.step == 3 and back.sample == snap.sample and back.vocab == snap.vocab
    assert np.array_equal(back.topk_ids, snap.topk_ids)
    assert np.array_equal(back.attention, snap.attention)
    assert np.allclose(back.embedding, snap.embedding)


def test_corrupt_bytes_are_a_one_line_error(trainer):
    data = fmt.encode(trainer.probe.capture(trainer.model, 3))
    for broken in (data[: len(data) // 2], b"not a zip", b""):
        with pytest.raises(LLMBError, match="step 7 is corrupt or unreadable"):
            fmt.decode(broken, "snapshot of step 7")


def test_medium_snapshot_is_compact(shakespeare):
    config = build_config("medium")
    t = Trainer(config, prepare_dataset(shakespeare, 128), device="cpu")
    size = len(fmt.encode(t.probe.capture(t.model, 0)))
    assert size <= 150_000


def test_a_snapshot_that_unpacks_to_far_more_than_a_snapshot_is_refused_before_unpacking():
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, format_version=np.array(1), attention=np.zeros(80 * 2**20, dtype=np.uint8))
    assert len(buffer.getvalue()) < 2**20  # deflate packs the zeros a thousandfold
    with pytest.raises(LLMBError, match=r"snapshot of step 7 is corrupt or unreadable \(it unpacks to 83886\d+ bytes"):
        fmt.decode(buffer.getvalue(), "snapshot of step 7")


def test_a_text_of_thousands_of_characters_maps_its_most_frequent_thousand(shakespeare):
    from dash_app.figures.star_map import star_figure, title
    from llmb_mlflow.training.corpus import Corpus
    from llmb_mlflow.training.probes import STAR_TOKENS

    rare = "".join(chr(0x4E00 + i) for i in range(1500))  # 1,500 characters seen once each
    corpus = Corpus("many", shakespeare.text[:20_000] + rare + shakespeare.text[20_000:24_000])
    config = build_config("small", n_layer=1, n_embd=16, n_head=2, block_size=16, sample_chars=20, batch_size=4)
    t = Trainer(config, prepare_dataset(corpus, 16), device="cpu")
    snap = fmt.decode(fmt.encode(t.probe.capture(t.model, 0))).check()
    vocab = t.dataset.tokenizer
    assert vocab.vocab_size > 1500 and snap.embedding.shape == (STAR_TOKENS, 3)
    shown = {vocab.chars[i] for i in snap.star_ids}
    assert set(shakespeare.text[:20_000]) <= shown  # every character of the play, then rare ones to fill
    assert title(snap) == f"Character star map (1,000 of {vocab.vocab_size:,} characters)"
    assert sum(len(trace["text"]) for trace in star_figure(snap)["data"]) == STAR_TOKENS
