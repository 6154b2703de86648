"""The embedding star map: every character as a point in 3-D, coloured by its class."""

from __future__ import annotations

import numpy as np

from .plotly_json import typed

from .probability_tower import visible

CLASSES = {
    "vowel": "#d62728", "consonant": "#1f77b4", "digit": "#2ca02c",
    "punctuation": "#ff7f0e", "whitespace": "#7f7f7f", "other": "#9467bd",
}


def char_class(ch: str) -> str:
    if ch.isspace():
        return "whitespace"
    if ch.isdigit():
        return "digit"
    if ch.isalpha():
        return "vowel" if ch.lower() in "aeiouyàáâäèéêëìíîïòóôöùúûü" else "consonant"
    if ch.isprintable() and not ch.isalnum():
        return "punctuation"
    return "other"


def nearest(embedding: np.ndarray, k: int = 3) -> np.ndarray:
    d = np.linalg.norm(embedding[:, None, :] - embedding[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1)[:, :k]


def star_figure(snapshot, axis_range: float | None = None) -> dict:
    emb = np.asarray(snapshot.embedding, dtype=np.float32)
    vocab = snapshot.vocab
    neighbours = nearest(emb)
    reach = axis_range or float(np.abs(emb).max() * 1.1 or 1.0)
    traces = []
    for cls, colour in CLASSES.items():
        idx = [i for i, ch in enumerate(vocab) if char_class(ch) == cls]
        if not idx:
            continue
        traces.append({
            "type": "scatter3d", "x": typed(emb[idx, 0]), "y": typed(emb[idx, 1]), "z": typed(emb[idx, 2]),
            "mode": "markers+text", "name": cls, "text": [visible(vocab[i]) for i in idx],
            "textposition": "top center", "marker": {"size": 4, "color": colour},
            "customdata": [" ".join(visible(vocab[j]) for j in neighbours[i]) for i in idx],
            "hovertemplate": "%{text}  nearest: %{customdata}<extra>" + cls + "</extra>",
        })
    axis = {"range": [-reach, reach], "autorange": False, "showticklabels": False, "title": {"text": ""}}
    return {
        "data": traces,
        "layout": {"margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "height": 420, "uirevision": "stars",
                   "scene": {"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "cube"},
                   "legend": {"orientation": "h", "y": 0}},
    }
