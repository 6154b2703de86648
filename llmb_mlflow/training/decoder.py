"""One sequence at a time through a MicroGPT, in numpy, with a key/value cache: for sampling.

The same arithmetic as ``model.MicroGPT``'s forward pass (a test holds them equal). Sampling
feeds one character at a time, and a MicroGPT's matrices are tiny (``baby``'s largest is
128 x 512): torch's dispatch and ``nn.Module`` calls cost more than the arithmetic, so a
200-character sample took ~0.2 s of every evaluation; numpy takes about half. OpenBLAS is held
to one thread while a decoder runs: its threads waking for products this small made the same
sample six times slower beside torch's.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

LAYER_WEIGHTS = ("ln_1.weight", "attn.qkv.weight", "attn.proj.weight", "ln_2.weight", "mlp.fc.weight",
                 "mlp.proj.weight")
LN_EPS = 1e-5  # nn.LayerNorm's default, which the model uses


class Decoder:
    """Logits for a growing context: ``feed`` a prompt, then one token at a time. The model's
    weights are copied as they are when the decoder is made."""

    def __init__(self, model):
        cfg = model.cfg
        state = {name: tensor.detach().float().cpu().numpy().copy() for name, tensor in model.state_dict().items()}
        self.n_head, self.n_embd, self.block_size = cfg.n_head, cfg.n_embd, cfg.block_size
        self.gelu = cfg.activation == "gelu"
        self.tok_emb, self.pos_emb = state["tok_emb.weight"], state["pos_emb.weight"]
        self.ln_f = state["ln_f.weight"]
        # Matrices transposed once so that every product is (tokens, in) @ (in, out).
        self.layers = [tuple(_as_input_major(state[f"blocks.{i}.{name}"]) for name in LAYER_WEIGHTS)
                       for i in range(cfg.n_layer)]
        self.head_out = np.ascontiguousarray(self.tok_emb.T)  # the tied language-model head
        shape = (cfg.n_layer, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
        self.keys, self.values = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        self.filled = 0

    def restart(self) -> None:
        """Forget the context."""
        self.filled = 0

    def feed(self, ids: list[int]) -> np.ndarray:
        """The logits (T, V) at each of ``ids``, which continue the context fed so far."""
        start, end = self.filled, self.filled + len(ids)
        if end > self.block_size:
            raise ValueError("the context would exceed block_size")
        heads, width = self.n_head, self.n_embd // self.n_head
        x = self.tok_emb[ids] + self.pos_emb[start:end]
        later = np.arange(end)[None, :] > np.arange(start, end)[:, None]  # keys after each query
        for keys, values, (ln_1, qkv, proj, ln_2, fc, fc_proj) in zip(self.keys, self.values, self.layers):
            q, k, v = (_layer_norm(x, ln_1) @ qkv).reshape(len(ids), 3, heads, width).transpose(1, 2, 0, 3)
            keys[:, start:end], values[:, start:end] = k, v
            scores = q @ keys[:, :end].transpose(0, 2, 1) / math.sqrt(width)  # (heads, T, end)
            scores[:, later] = -np.inf
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            x = x + (weights @ values[:, :end]).transpose(1, 0, 2).reshape(len(ids), self.n_embd) @ proj
            x = x + self._activation(_layer_norm(x, ln_2) @ fc) @ fc_proj
        self.filled = end
        return _layer_norm(x, self.ln_f) @ self.head_out

    def _activation(self, h: np.ndarray) -> np.ndarray:
        return F.gelu(torch.from_numpy(h)).numpy() if self.gelu else np.maximum(h, 0)


def _as_input_major(weight: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(weight.T) if weight.ndim == 2 else weight


def _layer_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    width = x.shape[-1]  # sums, not means: numpy's mean costs three times as much on a vector
    centred = x - x.sum(-1, keepdims=True) / width
    return centred / np.sqrt((centred * centred).sum(-1, keepdims=True) / width + LN_EPS) * weight
