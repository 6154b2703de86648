"""Sampling text from a MicroGPT with a key/value cache, reproducibly from a seed."""

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
    uniform = torch.rand(n, model.cfg.vocab_size, generator=torch.Generator().manual_seed(seed))
    gumbel = (-torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-7)))).numpy()
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
