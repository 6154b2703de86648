"""Capture a Snapshot from a model: sample with next-token probabilities, a stable 3-D
embedding projection, attention weights on a fixed probe text, and the model's own weights."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from . import weights as weights_format
from .corpus import Dataset
from .sampling import sample
from ..formats.snapshot import Snapshot

TOP_K = 10
PROBE_CHARS = 64


class SnapshotProbe:
    """Takes snapshots that are comparable across steps: the same prompt, sampling seed and
    probe text every time, and embedding axes aligned with the previous snapshot's."""

    def __init__(self, dataset: Dataset, block_size: int, sample_chars: int,
                 temperature: float, seed: int, keep_weights: bool = True):
        self.tokenizer = dataset.tokenizer
        self.keep_weights = keep_weights
        self.sample_chars = sample_chars
        self.temperature = temperature
        self.seed = seed
        vocab = self.tokenizer.chars
        self.prompt = "\n" if "\n" in vocab else dataset.val_text[0]
        self.probe_text = probe_text(dataset.val_text, min(block_size, PROBE_CHARS))
        self.basis: np.ndarray | None = None

    @torch.inference_mode()
    def capture(self, model, step: int) -> Snapshot:
        was_training = model.training
        model.eval()
        try:
            device = next(model.parameters()).device
            sample_ids, topk_ids, topk_probs = self._sample(model)
            probe = torch.as_tensor(self.tokenizer.encode(self.probe_text).astype(np.int64),
                                    device=device)[None]
            _, _, weights = model(probe, want_weights=True)
            attention = torch.cat(weights).to(torch.float16).cpu().numpy()  # (L, H, T, T)
            embedding = self._project(model.tok_emb.weight.float().cpu().numpy())
            state = {name: tensor.float().cpu().numpy() for name, tensor in model.state_dict().items()} \
                if self.keep_weights else None
        finally:
            model.train(was_training)
        return Snapshot(
            step=step, vocab=self.tokenizer.chars, prompt=self.prompt,
            sample_ids=sample_ids, topk_ids=topk_ids, topk_probs=topk_probs,
            embedding=embedding, probe_ids=self.tokenizer.encode(self.probe_text),
            attention=attention, temperature=self.temperature,
            weights=weights_format.encode(state, asdict(model.cfg)) if state else None,
        )

    def _sample(self, model):
        ids, logits = sample(model, [int(i) for i in self.tokenizer.encode(self.prompt)],
                             self.sample_chars, self.temperature, self.seed)
        top = logits.softmax(-1).topk(min(TOP_K, self.tokenizer.vocab_size), dim=-1)
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


def probe_text(val_text: str, length: int) -> str:
    """``length`` characters of validation text, starting at a line start when one is near."""
    start = val_text.find("\n", 0, 500) + 1
    start = min(start, len(val_text) - length)
    return val_text[start:start + length]
