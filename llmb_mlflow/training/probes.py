"""Capture a Snapshot from a model: sample with next-token probabilities, a stable 3-D
embedding projection, attention weights on a fixed probe text, and the model's own weights
(as a MicroGPT's, when its view can give them: ``views``)."""

from __future__ import annotations


import numpy as np
import torch

from . import weights as weights_format
from .corpus import Dataset
from .config import ModelConfig
from .model import MicroGPT
from .sampling import sample, sample_view
from .views import as_array, view_of
from ..errors import LLMBError
from ..formats.snapshot import Snapshot

TOP_K = 10
PROBE_CHARS = 64
RECORDED_WEIGHTS_MAX_PARAMS = 2_000_000  # llmb.record keeps a model's weights at each snapshot up to 4 MB (float16)
STAR_TOKENS = 1000  # a star map of more points turns slowly in a browser


class SnapshotProbe:
    """Takes snapshots that are comparable across steps: the same prompt, sampling seed and
    probe text every time, and embedding axes aligned with the previous snapshot's."""

    def __init__(self, tokenizer, prompt, probe, sample_chars: int, temperature: float, seed: int,
                 keep_weights: bool = True, star_ids=None, max_weight_params: int | None = None):
        """``prompt``, ``probe``: text or ids; ``star_ids``: the ids the star map shows (None:
        every id); ``max_weight_params``: weights of a larger model are not kept."""
        self.tokenizer = tokenizer  # a CharTokenizer, or vocabulary.TokenTokenizer
        self.prompt_ids, self.probe_ids = (_ids(tokenizer, x) for x in (prompt, probe))
        self.prompt, self.probe_text = tokenizer.decode(self.prompt_ids), tokenizer.decode(self.probe_ids)
        self.sample_chars, self.temperature, self.seed = sample_chars, temperature, seed
        self.keep_weights = keep_weights  # as a MicroGPT's, when the view gives them (runnable_weights)
        self.star_ids = None if star_ids is None else np.asarray(star_ids, dtype=np.int64)
        self.max_weight_params = max_weight_params
        self.basis: np.ndarray | None = None

    @classmethod
    def of_dataset(cls, dataset: Dataset, block_size: int, sample_chars: int, temperature: float, seed: int,
                   keep_weights: bool = True) -> "SnapshotProbe":
        """The probe of a training on ``dataset``: its prompt a newline, its probe text from the
        validation split; the star map shows every character, or the STAR_TOKENS most frequent
        of a text of more."""
        vocab = dataset.tokenizer.chars
        star_ids = None
        if len(vocab) > STAR_TOKENS:
            counts = np.bincount(dataset.train_ids, minlength=len(vocab))
            star_ids = np.sort(np.argsort(-counts, kind="stable")[:STAR_TOKENS])
        return cls(dataset.tokenizer, "\n" if "\n" in vocab else dataset.val_text[0],
                   probe_text(dataset.val_text, min(block_size, PROBE_CHARS)), sample_chars, temperature, seed,
                   keep_weights, star_ids=star_ids)

    @torch.inference_mode()
    def capture(self, model, step: int, view=None) -> Snapshot:
        """The snapshot of ``model`` (seen through ``view``, else ``views.view_of(model)``)."""
        was_training = model.training
        model.eval()
        try:
            view = view_of(model, view)
            weights = runnable_weights(view, model, self.tokenizer.vocab_size, self.max_weight_params) \
                if self.keep_weights else None
            view = _Trimmed(view, self.tokenizer.vocab_size)
            device = next(model.parameters()).device
            sample_ids, topk_ids, topk_probs = self._sample(model, view, device, weights)
            probe = torch.as_tensor(self.probe_ids, device=device)[None]
            attention = as_array(view.attention(probe))
            length = probe.shape[1]
            attention = np.zeros((0, 0, length, length)) if attention is None else attention
            embedding = as_array(view.embedding())
            embedding = None if embedding is None else embedding[:self.tokenizer.vocab_size]
            if embedding is not None and self.star_ids is not None:
                embedding = embedding[self.star_ids]
            embedding = np.zeros((0, 3)) if embedding is None else self._project(embedding)
        finally:
            model.train(was_training)
        return Snapshot(
            step=step, vocab=self.tokenizer.vocabulary, prompt=self.prompt,
            sample_ids=sample_ids, topk_ids=topk_ids, topk_probs=topk_probs,
            embedding=embedding, probe_ids=self.probe_ids, embedding_ids=self.star_ids,
            attention=attention.astype(np.float16), temperature=self.temperature,
            weights=weights_format.encode(weights[1], weights[0]) if weights else None,
        )

    def _sample(self, model, view, device, weights=None):
        """``weights``: the model's as a MicroGPT's (``runnable_weights``), if it gave them."""
        prompt = [int(i) for i in self.prompt_ids]
        if isinstance(model, MicroGPT) and model.cfg.vocab_size == self.tokenizer.vocab_size:
            # its key/value-cached decoder draws what sample_view would, sooner
            ids, logits = sample(model, prompt, self.sample_chars, self.temperature, self.seed)
        elif weights is not None:  # the same decoder, from the weights it gave as a MicroGPT's
            ids, logits = sample(_AsMicroGPT(*weights), prompt, self.sample_chars, self.temperature, self.seed)
        else:
            ids, logits = sample_view(view, prompt, self.sample_chars, self.temperature, self.seed, device)
        top = logits.softmax(-1).topk(min(TOP_K, logits.shape[-1]), dim=-1)
        return np.array(ids, dtype=np.int64), top.indices.cpu().numpy(), top.values.cpu().numpy()

    def _project(self, embedding: np.ndarray) -> np.ndarray:
        """PCA to 3-D, rotated within the top-3 subspace to best match the previous axes."""
        centred = embedding - embedding.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        basis = np.zeros((embedding.shape[1], 3), dtype=np.float64)
        k = min(3, vt.shape[0])
        basis[:, :k] = vt[:k].T
        if self.basis is not None:
            u, _, wt = np.linalg.svd(basis.T @ self.basis)
            basis = basis @ (u @ wt)
        self.basis = basis
        return (centred @ basis).astype(np.float32)


class _Trimmed:
    """A view whose logits stop at the tokenizer's last id (a model may pad its vocabulary,
    as nanoGPT's GPT-2 configuration pads 50,257 tokens to 50,304)."""

    def __init__(self, view, vocab_size: int):
        self.view, self.vocab_size, self.block_size = view, vocab_size, view.block_size

    def logits(self, ids):
        return self.view.logits(ids)[..., :self.vocab_size]

    def attention(self, ids):
        return self.view.attention(ids)

    def embedding(self):
        return self.view.embedding()


class _AsMicroGPT:
    """A MicroGPT's settings and arrays, as ``sampling.sample``'s decoder reads a model."""

    def __init__(self, settings: dict, arrays: dict):
        self.cfg, self.arrays = ModelConfig(**settings), arrays

    def state_dict(self):
        return {name: torch.from_numpy(np.asarray(array)) for name, array in self.arrays.items()}


def runnable_weights(view, model, vocab_size: int, max_params: int | None = None):
    """(MicroGPT settings, arrays) of ``model``, when its view gives its weights as a MicroGPT's
    (``views``), the embedding cut to the tokenizer's ``vocab_size`` ids; None for a model whose
    view gives none, or of more than ``max_params`` parameters (counted before anything is copied)."""
    give = getattr(view, "microgpt_weights", None)
    if not callable(give):
        return None
    if max_params is not None and sum(p.numel() for p in model.parameters()) > max_params:
        return None
    found = give()
    if found is None:
        return None
    try:
        settings, state = found
        wide = settings["vocab_size"]
    except (TypeError, ValueError, KeyError):
        raise LLMBError("view=: microgpt_weights() must give (MicroGPT settings, arrays) or None") from None
    if wide > vocab_size:
        state = {name: a[:vocab_size] if name in ("tok_emb.weight", "lm_head.weight") else a
                 for name, a in state.items()}
        settings = {**settings, "vocab_size": vocab_size}
    return settings, state


def _ids(tokenizer, text_or_ids) -> np.ndarray:
    if isinstance(text_or_ids, str):
        return tokenizer.encode(text_or_ids).astype(np.int64)
    return np.asarray(text_or_ids, dtype=np.int64)


def probe_text(val_text: str, length: int) -> str:
    """``length`` characters of validation text, starting at a line start when one is near."""
    start = val_text.find("\n", 0, 500) + 1
    start = min(start, len(val_text) - length)
    return val_text[start:start + length]
