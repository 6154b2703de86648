"""How spread out each attention head's attention is: its mean entropy on the probe text.

For one query row (the character being read at position ``t``, counting from 1) a causal head
may look at ``t`` positions: itself and the ``t - 1`` before it. The entropy of that row's
weights ``p`` over those positions is ``-sum(p * ln p)``, in **nats** (natural logarithm):

- 0 when the head puts all its weight on one position;
- ``ln(t)`` when it spreads its weight evenly over all ``t`` positions (the most it can be).

A head's entropy is the mean over the probe's rows, so it lies between 0 and
``uniform_entropy(T)`` (the mean of ``ln(t)`` for ``t = 1..T``; about 3.2 for a 64-character
probe), and ``exp(entropy)`` reads as "about how many characters it spreads over". The first
row can only look at itself and always counts 0. Numpy only (the viewer imports it too).
"""

from __future__ import annotations

import numpy as np


def head_entropy(attention: np.ndarray) -> np.ndarray:
    """Mean entropy (nats) of each head's causal attention rows.

    ``attention``: (..., T, T) weights, row ``i`` over the positions ``0..i`` (anything above the
    diagonal is ignored; each row is renormalised over its allowed positions, so the float16
    rounding of a snapshot does not count). Returns an array of the leading shape, e.g.
    (n_layer, n_head), float64."""
    att = np.asarray(attention, dtype=np.float64)
    t = att.shape[-1]
    allowed = np.tril(np.ones((t, t), dtype=bool))
    p = np.where(allowed, np.clip(att, 0.0, None), 0.0)
    totals = p.sum(axis=-1, keepdims=True)
    p = np.divide(p, totals, out=np.zeros_like(p), where=totals > 0)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)  # 0 ln 0 counts 0
    return -(p * logs).sum(axis=-1).mean(axis=-1)


def uniform_entropy(t: int) -> float:
    """A head's entropy when every row spreads evenly over all it may see: mean of ln(1..t)."""
    return float(np.log(np.arange(1, t + 1)).mean()) if t > 0 else 0.0
