"""Seeing inside a model that is not ours: the next-token logits at every position, the
attention weights on a probe text, and the token embedding matrix, whatever the model's class.

``view_of(model)`` knows LLMBreaker's ``MicroGPT`` and nanoGPT's ``GPT`` (unmodified: its
attention runs through ``scaled_dot_product_attention``, which returns no weights, so they are
recomputed from what each block's ``c_attn`` projection outputs, caught by a forward hook).
Any other model is seen through an object with the methods of ``ModelView``, given as ``view``:

    class MyView:
        block_size = 256
        def logits(self, ids): return my_model(ids)          # (1, T, vocab) for ids (1, T)
        def attention(self, ids): return None                # or (layers, heads, T, T)
        def embedding(self): return my_model.embed.weight    # or None: no star map

A Hugging Face causal LM fits the same shape (``output_attentions=True``,
``get_input_embeddings()``). A view may also have ``microgpt_weights()``: the model as a ``MicroGPT``'s
settings and state dict, which the Token Playground can run at any recorded step. nanoGPT's
``GPT`` without biases is one (the same architecture under other names), so its step weights
are kept as MicroGPT's.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ..errors import LLMBError


@runtime_checkable
class ModelView(Protocol):
    """What the recorder needs of a model. ``ids`` is a (1, T) LongTensor on the model's device."""

    block_size: int

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """The next-token logits at every position, (1, T, vocab)."""

    def attention(self, ids: torch.Tensor) -> np.ndarray | torch.Tensor | None:
        """Every layer's and head's attention weights on ``ids``, (layers, heads, T, T), rows
        summing to 1; None if the model has none to show."""

    def embedding(self) -> np.ndarray | torch.Tensor | None:
        """The token embedding matrix, (vocab, width); None if the model has none to show."""


class MicroGPTView:
    def __init__(self, model):
        self.model, self.block_size = model, model.cfg.block_size

    def logits(self, ids):
        return self.model(ids)[0]

    def attention(self, ids):
        return torch.cat(self.model(ids, want_weights=True)[2])

    def embedding(self):
        return self.model.tok_emb.weight

    def microgpt_weights(self):
        return asdict(self.model.cfg), _arrays(self.model.state_dict())


class NanoGPTView:
    """nanoGPT's ``GPT``: ``transformer.wte``, ``transformer.h[i].attn.c_attn`` (q, k and v of
    every head side by side), ``config.block_size``."""

    def __init__(self, model):
        self.model, self.block_size = model, model.config.block_size

    @staticmethod
    def fits(model) -> bool:
        blocks = getattr(getattr(model, "transformer", None), "h", None)
        return (hasattr(getattr(model, "config", None), "block_size") and blocks is not None
                and len(blocks) > 0 and all(hasattr(getattr(b, "attn", None), "c_attn") for b in blocks))

    def logits(self, ids):
        return self.model(ids, targets=ids)[0]  # with targets, nanoGPT gives every position's logits

    def attention(self, ids):
        projections = []
        hooks = [block.attn.c_attn.register_forward_hook(lambda _m, _i, out: projections.append(out))
                 for block in self.model.transformer.h]
        try:
            self.model(ids)
        finally:
            for hook in hooks:
                hook.remove()
        return torch.cat([_weights(out, block.attn.n_head)
                          for out, block in zip(projections, self.model.transformer.h)])

    def embedding(self):
        return self.model.transformer.wte.weight

    def microgpt_weights(self):
        """As a MicroGPT, when the model has no biases (nanoGPT's ``bias=False``, its
        Shakespeare recipe's); else None."""
        config = self.model.config
        state = self.model.state_dict()
        if getattr(config, "bias", True):
            return None
        renamed = {}
        for name, tensor in state.items():
            if name.endswith(".attn.bias") and not name.endswith("c_attn.bias"):  # an old nanoGPT's causal mask
                continue
            new = NANOGPT_NAMES.get(name)
            if new is None:
                found = re.fullmatch(r"transformer\.h\.(\d+)\.(.+)", name)
                part = found and NANOGPT_BLOCK_NAMES.get(found.group(2))
                if not part:
                    return None
                new = f"blocks.{found.group(1)}.{part}"
            renamed[new] = tensor
        settings = dict(n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd,
                        block_size=config.block_size, dropout=float(config.dropout), activation="gelu",
                        vocab_size=config.vocab_size)
        return settings, _arrays(renamed)


NANOGPT_NAMES = {"transformer.wte.weight": "tok_emb.weight", "transformer.wpe.weight": "pos_emb.weight",
                 "transformer.ln_f.weight": "ln_f.weight", "lm_head.weight": "lm_head.weight"}
NANOGPT_BLOCK_NAMES = {"ln_1.weight": "ln_1.weight", "attn.c_attn.weight": "attn.qkv.weight",
                       "attn.c_proj.weight": "attn.proj.weight", "ln_2.weight": "ln_2.weight",
                       "mlp.c_fc.weight": "mlp.fc.weight", "mlp.c_proj.weight": "mlp.proj.weight"}


def _arrays(state) -> dict[str, np.ndarray]:
    return {name: tensor.detach().float().cpu().numpy() for name, tensor in state.items()}


def _weights(projection: torch.Tensor, heads: int) -> torch.Tensor:
    """Causal attention weights, (B, heads, T, T), from a (B, T, 3C) projection to q, k and v."""
    batch, length, width = projection.shape
    q, k, _ = projection.float().split(width // 3, dim=2)
    q, k = (t.view(batch, length, heads, -1).transpose(1, 2) for t in (q, k))
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
    mask = torch.ones(length, length, dtype=torch.bool, device=scores.device).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


def view_of(model, view=None) -> ModelView:
    """How to see inside ``model``: ``view`` if given, else one this module knows for its class."""
    from .model import MicroGPT

    model = unwrapped(model)
    if view is not None:
        if not isinstance(view, ModelView):
            missing = [name for name in ("block_size", "logits", "attention", "embedding") if not hasattr(view, name)]
            raise LLMBError(f"view= must have {', '.join(missing)} (see llmb_mlflow.training.views.ModelView)")
        return view
    if isinstance(model, MicroGPT):
        return MicroGPTView(model)
    if NanoGPTView.fits(model):
        return NanoGPTView(model)
    raise LLMBError(f"cannot see inside a {type(model).__name__}: give view= an object with block_size, "
                    "logits(ids), attention(ids) and embedding() (see llmb_mlflow.training.views.ModelView)")


def unwrapped(model):
    """The model inside a data-parallel or ``torch.compile`` wrapper (forward hooks on a compiled
    model's modules go unseen: the original's are seen)."""
    if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    return getattr(model, "_orig_mod", model)


def as_array(value) -> np.ndarray | None:
    """A view's tensor or array as a float32 numpy array on the CPU (None stays None)."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)
