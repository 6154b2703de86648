"""Seeing inside models that are not ours: nanoGPT's own GPT (its model.py, unmodified, from
../shared/clients), our MicroGPT, and a model seen through a view object of its user's."""

import numpy as np
import pytest
import torch

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.training.config import ModelConfig
from llmb_mlflow.training.model import MicroGPT
from llmb_mlflow.training.views import ModelView, as_array, view_of

from conftest import nanogpt_module


@pytest.fixture(scope="module")
def nanogpt():
    module = nanogpt_module()
    torch.manual_seed(0)
    model = module.GPT(module.GPTConfig(block_size=32, vocab_size=65, n_layer=2, n_head=4, n_embd=32, dropout=0.0))
    return model.eval()


def nanogpts_own_attention(model, ids):
    """The weights nanoGPT's own slow path computes: flash off, its softmax caught at its dropout."""
    caught, hooks = [], []
    for block in model.transformer.h:
        attn = block.attn
        attn.flash = False
        attn.register_buffer("bias", torch.tril(torch.ones(32, 32)).view(1, 1, 32, 32))
        hooks.append(attn.attn_dropout.register_forward_hook(lambda _m, inputs, _out: caught.append(inputs[0])))
    try:
        model(ids)
    finally:
        for block, hook in zip(model.transformer.h, hooks):
            block.attn.flash = True
            hook.remove()
    return torch.cat(caught)


def test_nanogpts_attention_is_recomputed_exactly_from_its_projections(nanogpt):
    ids = torch.randint(0, 65, (1, 20), generator=torch.Generator().manual_seed(1))
    view = view_of(nanogpt)
    with torch.inference_mode():
        seen = view.attention(ids)
        expected = nanogpts_own_attention(nanogpt, ids)
    assert seen.shape == (2, 4, 20, 20)
    torch.testing.assert_close(seen, expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(seen.sum(-1), torch.ones(2, 4, 20)) and not seen.triu(1).any()
    assert not any(block.attn.c_attn._forward_hooks for block in nanogpt.transformer.h)  # hooks removed


def test_nanogpts_logits_at_every_position_and_its_embedding(nanogpt):
    ids = torch.randint(0, 65, (1, 12), generator=torch.Generator().manual_seed(2))
    view = view_of(nanogpt)
    with torch.inference_mode():
        logits = view.logits(ids)
        last = nanogpt(ids)[0]
    assert logits.shape == (1, 12, 65) and view.block_size == 32
    torch.testing.assert_close(logits[:, -1:], last)
    assert as_array(view.embedding()).shape == (65, 32)


def test_microgpt_is_seen_through_its_own_weights():
    model = MicroGPT(ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=16, vocab_size=30)).eval()
    ids = torch.randint(0, 30, (1, 10))
    view = view_of(model)
    with torch.inference_mode():
        assert view.attention(ids).shape == (2, 2, 10, 10)
        torch.testing.assert_close(view.logits(ids), model(ids)[0])
    assert as_array(view.embedding()).dtype == np.float32


class OwnView:
    block_size = 8

    def logits(self, ids):
        return torch.zeros(1, ids.shape[1], 5)

    def attention(self, ids):
        return None

    def embedding(self):
        return None


def test_any_model_is_seen_through_a_view_of_its_users():
    view = view_of(torch.nn.Linear(2, 2), view=OwnView())
    assert isinstance(view, ModelView) and view.attention(torch.zeros(1, 3)) is None


def test_a_model_nothing_can_see_inside_is_one_line():
    with pytest.raises(LLMBError, match="^cannot see inside a Linear: give view= an object with block_size"):
        view_of(torch.nn.Linear(2, 2))
    with pytest.raises(LLMBError, match="^view= must have block_size, attention, embedding"):
        view_of(torch.nn.Linear(2, 2), view=type("Half", (), {"logits": lambda self, ids: None})())


def test_sampling_through_a_view_draws_what_the_decoder_draws():
    from llmb_mlflow.training.sampling import sample, sample_view

    torch.manual_seed(3)
    model = MicroGPT(ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=30)).eval()
    prompt = [1, 2, 3]
    ids, logits = sample(model, prompt, 20, 0.8, seed=5)  # 20 tokens: the context fills 8 and restarts
    seen_ids, seen_logits = sample_view(view_of(model), prompt, 20, 0.8, seed=5)
    assert seen_ids == ids
    torch.testing.assert_close(seen_logits, logits.float(), rtol=1e-4, atol=1e-4)


def test_a_nanogpt_without_biases_is_kept_as_the_microgpt_it_is_and_one_with_biases_is_not(nanogpt):
    from llmb_mlflow.training.shapes import build

    module = nanogpt_module()
    torch.manual_seed(1)
    plain = module.GPT(module.GPTConfig(block_size=32, vocab_size=65, n_layer=2, n_head=4, n_embd=32, dropout=0.0,
                                        bias=False)).eval()
    settings, state = view_of(plain).microgpt_weights()
    micro = build(ModelConfig(**settings), state).eval()
    ids = torch.randint(65, (1, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(plain(ids, targets=ids)[0], micro(ids)[0], atol=1e-6)
    assert view_of(nanogpt).microgpt_weights() is None  # GPTConfig's default has biases, which MicroGPT has not
