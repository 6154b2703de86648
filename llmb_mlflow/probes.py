"""Capture a Snapshot from a model: sample with next-token probabilities, a stable 3-D
embedding projection, and attention weights on a fixed probe text."""

from __future__ import annotations

import numpy as np
import torch

from .corpus import Dataset
from .snapshot import Snapshot

TOP_K = 10
PROBE_CHARS = 64


class SnapshotProbe:
    """Takes snapshots that are comparable across steps: the same prompt, sampling seed and
    probe text every time, and embedding axes aligned with the previous snapshot's."""

    def __init__(self, dataset: Dataset, block_size: int, sample_chars: int,
                 temperature: float, seed: int):
        self.tokenizer = dataset.tokenizer
        self.block_size = block_size
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
            sample_ids, topk_ids, topk_probs = self._sample(model, device)
            probe = torch.as_tensor(self.tokenizer.encode(self.probe_text).astype(np.int64),
                                    device=device)[None]
            _, _, weights = model(probe, want_weights=True)
            attention = torch.cat(weights).to(torch.float16).cpu().numpy()  # (L, H, T, T)
            embedding = self._project(model.tok_emb.weight.float().cpu().numpy())
        finally:
            model.train(was_training)
        return Snapshot(
            step=step, vocab=self.tokenizer.chars, prompt=self.prompt,
            sample_ids=sample_ids, topk_ids=topk_ids, topk_probs=topk_probs,
            embedding=embedding, probe_ids=self.tokenizer.encode(self.probe_text),
            attention=attention, temperature=self.temperature,
        )

    def _sample(self, model, device):
        """Sample ``sample_chars`` characters at ``temperature`` with a key/value cache.
        Gumbel noise drawn once from ``seed`` makes the choices reproducible; when the
        context fills ``block_size`` the cache restarts from the last half of it."""
        n, vocab_size, block = self.sample_chars, self.tokenizer.vocab_size, self.block_size
        uniform = torch.rand(n, vocab_size, generator=torch.Generator().manual_seed(self.seed))
        gumbel = (-torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-7)))).to(device)
        context = [int(i) for i in self.tokenizer.encode(self.prompt)][-block:]

        def prime(ids):
            caches = [{} for _ in model.blocks]
            logits = model.extend(torch.tensor([ids], device=device), caches, 0)[0, -1]
            return caches, logits, len(ids)

        caches, logits, filled = prime(context)
        steps = []
        for i in range(n):
            steps.append(logits)
            choice = int((logits.float() / self.temperature + gumbel[i]).argmax())
            context.append(choice)
            if filled == block:
                caches, logits, filled = prime(context[-max(block // 2, 1):])
            else:
                logits = model.extend(torch.tensor([[choice]], device=device), caches, filled)[0, -1]
                filled += 1
        probs = torch.stack(steps).float().softmax(-1)
        top = probs.topk(min(TOP_K, vocab_size), dim=-1)
        sampled = np.array(context[-n:], dtype=np.int64)
        return sampled, top.indices.cpu().numpy(), top.values.cpu().numpy()

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
