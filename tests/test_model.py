import math

import torch

from llmb_mlflow.training.config import ModelConfig
from llmb_mlflow.training.model import MicroGPT


def model(**kw):
    torch.manual_seed(0)
    cfg = ModelConfig(**{**dict(n_layer=2, n_head=2, n_embd=16, block_size=12, vocab_size=11), **kw})
    return MicroGPT(cfg).eval()


def test_logits_loss_and_tied_head():
    m = model()
    idx, targets = torch.randint(11, (2, 3, 12))
    logits, loss, weights = m(idx, targets)
    assert logits.shape == (3, 12, 11) and weights is None
    assert m.lm_head.weight is m.tok_emb.weight
    # At N(0, 0.02) init the model is close to uniform over the vocabulary.
    assert abs(loss.item() - math.log(11)) < 0.1


def test_init_is_normal_002():
    m = model(n_embd=64, vocab_size=200)
    assert abs(m.tok_emb.weight.std().item() - 0.02) < 0.002
    assert abs(m.blocks[0].mlp.fc.weight.std().item() - 0.02) < 0.002


def test_relu_variant_runs_forward_and_backward_and_differs_from_gelu():
    relu, gelu = model(activation="relu"), model()
    assert isinstance(relu.blocks[0].mlp.act, torch.nn.ReLU)
    idx, targets = torch.randint(11, (2, 3, 12))
    logits, loss, _ = relu.train()(idx, targets)
    loss.backward()
    assert torch.isfinite(loss) and relu.blocks[0].mlp.fc.weight.grad.abs().sum() > 0
    assert not torch.allclose(logits, gelu(idx)[0])  # same weights (same seed), another activation


def test_explicit_attention_weights_match_the_fast_path():
    m = model()
    idx = torch.randint(11, (2, 12))
    fast, _, _ = m(idx)
    slow, _, weights = m(idx, want_weights=True)
    assert torch.allclose(fast, slow, atol=1e-5)
    assert len(weights) == 2 and weights[0].shape == (2, 2, 12, 12)
    for w in weights:
        assert torch.allclose(w.sum(-1), torch.ones(2, 2, 12))
        assert torch.all(w.triu(diagonal=1) == 0)
