"""Sampling text from a MicroGPT with a key/value cache, reproducibly from a seed."""

from __future__ import annotations

import torch


@torch.inference_mode()
def sample(model, prompt_ids: list[int], n: int, temperature: float, seed: int):
    """Sample ``n`` token ids after ``prompt_ids`` at ``temperature``.

    Returns the ids and the (n, V) logits each one was drawn from. Gumbel noise drawn once
    from ``seed`` makes the choices reproducible without touching torch's global RNG. When
    the context fills ``block_size``, the cache restarts from the last half of it."""
    block = model.cfg.block_size
    device = next(model.parameters()).device
    vocab_size = model.cfg.vocab_size
    uniform = torch.rand(n, vocab_size, generator=torch.Generator().manual_seed(seed))
    gumbel = (-torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-7)))).to(device)
    context = list(prompt_ids)[-block:]

    def prime(ids):
        caches = [{} for _ in model.blocks]
        logits = model.extend(torch.tensor([ids], device=device), caches, 0)[0, -1]
        return caches, logits, len(ids)

    caches, logits, filled = prime(context)
    steps = []
    for i in range(n):
        steps.append(logits)
        choice = int((logits.float() / temperature + gumbel[i]).argmax())
        context.append(choice)
        if i == n - 1:
            break
        if filled == block:
            caches, logits, filled = prime(context[-max(block // 2, 1):])
        else:
            logits = model.extend(torch.tensor([[choice]], device=device), caches, filled)[0, -1]
            filled += 1
    return context[len(context) - n:], torch.stack(steps).float()
