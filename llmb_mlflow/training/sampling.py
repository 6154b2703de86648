"""Sampling text reproducibly from a seed: from a MicroGPT with a key/value cache in numpy, or
from any model through its view (``views``), a whole forward pass per token."""

from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .decoder import Decoder


def sample(model, prompt_ids: list[int], n: int, temperature: float, seed: int):
    """Sample ``n`` token ids after ``prompt_ids`` at ``temperature``.

    Returns the ids and the (n, V) logits each one was drawn from. Gumbel noise drawn once
    from ``seed`` makes the choices reproducible without touching torch's global RNG. When
    the context fills ``block_size``, the cache restarts from the last half of it."""
    block = model.cfg.block_size
    gumbel = _gumbel(n, model.cfg.vocab_size, seed).numpy()
    context = list(prompt_ids)[-block:]
    steps = []
    with threadpool_limits(1, user_api="blas"):
        decoder = Decoder(model)
        logits = decoder.feed(context)[-1]
        for i in range(n):
            steps.append(logits)
            choice = int((logits / temperature + gumbel[i]).argmax())
            context.append(choice)
            if i == n - 1:
                break
            if decoder.filled == block:
                decoder.restart()
                logits = decoder.feed(context[-max(block // 2, 1):])[-1]
            else:
                logits = decoder.feed([choice])[-1]
    return context[len(context) - n:], torch.from_numpy(np.stack(steps))


@torch.inference_mode()
def sample_view(view, prompt_ids: list[int], n: int, temperature: float, seed: int, device="cpu"):
    """``sample`` for any model seen through ``view``: the same choices from the same logits,
    the context cut to its last half when it fills ``block_size`` as the cache restarts there."""
    block = view.block_size
    context, steps, gumbel = list(prompt_ids)[-block:], [], None
    window = list(context)  # what the decoder's cache would hold
    for i in range(n):
        logits = view.logits(torch.tensor([window], dtype=torch.long, device=device))[0, -1].float().cpu()
        if gumbel is None:
            gumbel = _gumbel(n, logits.shape[-1], seed)
        steps.append(logits)
        choice = int((logits / temperature + gumbel[i]).argmax())
        context.append(choice)
        window = context[-max(block // 2, 1):] if len(window) == block else [*window, choice]
    return context[len(context) - n:], torch.stack(steps)


def _gumbel(n: int, vocab: int, seed: int) -> torch.Tensor:
    """The noise that picks each token: drawn once from ``seed``, never from torch's global RNG."""
    uniform = torch.rand(n, vocab, generator=torch.Generator().manual_seed(seed))
    return -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-7)))
