"""The numpy decoder against the torch model it stands in for, and sampling through it."""

import numpy as np
import pytest
import torch

from llmb_mlflow.training.config import ModelConfig
from llmb_mlflow.training.decoder import Decoder
from llmb_mlflow.training.model import MicroGPT
from llmb_mlflow.training.sampling import sample


def model(**kw):
    """A small model whose weights are far from their near-uniform initialisation."""
    torch.manual_seed(0)
    m = MicroGPT(ModelConfig(**{**dict(n_layer=2, n_head=2, n_embd=16, block_size=12, vocab_size=11), **kw}))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(1.0 if p.dim() == 1 else 0.0, 0.3)
    return m.eval()


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_the_decoder_computes_the_models_logits_a_token_at_a_time(activation):
    m = model(activation=activation)
    idx = torch.randint(11, (12,), generator=torch.Generator().manual_seed(1))
    full = m(idx[None])[0][0].detach().numpy()
    assert full.std() > 0.5  # the weights make the logits differ from token to token
    decoder = Decoder(m)
    assert np.allclose(decoder.feed(idx[:5].tolist()), full[:5], atol=1e-4)
    for t in range(5, 12):
        assert np.allclose(decoder.feed([int(idx[t])])[-1], full[t], atol=1e-4)
    decoder.restart()
    assert np.allclose(decoder.feed(idx[6:].tolist()), m(idx[None, 6:])[0][0].detach().numpy(), atol=1e-4)


def test_the_decoder_refuses_a_context_longer_than_the_block():
    decoder = Decoder(model())
    decoder.feed(list(range(10)))
    with pytest.raises(ValueError, match="block_size"):
        decoder.feed([1, 2, 3])


def test_sampling_is_reproducible_and_restarts_the_cache_when_the_block_is_full():
    m = model()
    ids, logits = sample(m, [1, 2, 3], 30, 1.0, seed=5)
    assert len(ids) == 30 and logits.shape == (30, 11)
    assert sample(m, [1, 2, 3], 30, 1.0, seed=5)[0] == ids
    assert sample(m, [1, 2, 3], 30, 1.0, seed=6)[0] != ids
    # Each logit row is the model's own for the context it was drawn from: past the block, the
    # last half of the block (6 of 12 tokens) is fed again.
    window = [1, 2, 3]
    for i, chosen in enumerate(ids):
        expected = m(torch.tensor([window]))[0][0, -1].detach()
        assert torch.allclose(logits[i], expected, atol=1e-4), i
        window = window + [chosen] if len(window) < 12 else window[-5:] + [chosen]
    # At a temperature near zero the sample is the most likely character each time.
    cold, cold_logits = sample(m, [1, 2, 3], 20, 1e-4, seed=5)
    assert cold == cold_logits.argmax(-1).tolist()
