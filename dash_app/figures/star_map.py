"""The embedding star map: every character (or each of the run's chosen tokens) as a point in
3-D, coloured by its class."""

from __future__ import annotations

import numpy as np

from llmb_mlflow.formats.vocabulary import label

from .plotly_json import typed

NO_EMBEDDING = "This model records no token embedding: no star map."
CHARACTERS_TITLE = "Character star map"
CLASSES = {
    "vowel": "#d62728", "consonant": "#1f77b4", "digit": "#2ca02c",
    "punctuation": "#ff7f0e", "whitespace": "#7f7f7f", "word": "#8c564b", "other": "#9467bd",
}
LABELLED = 150  # characters past these are labelled on hover only, or the labels cover the map
LABELLED_TOKENS = 40  # of longer tokens, those the probe text reads (Attention Cinema's) are labelled

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


def token_class(token: str) -> str:
    """A character's class, or a longer token's: a word (letters, perhaps after a space), a
    number, punctuation, whitespace or other."""
    if len(token) == 1:
        return char_class(token)
    core = token.strip()
    if not core:
        return "whitespace"
    if core.isalpha():
        return "word"
    if core.isdigit():
        return "digit"
    if core.isprintable() and not any(c.isalnum() for c in core):
        return "punctuation"
    return "other"


def title(snapshot) -> str:
    chars = snapshot.vocab.is_chars
    name = CHARACTERS_TITLE if chars else "Token star map"
    shown = len(snapshot.star_ids)
    if not len(snapshot.embedding) or shown >= snapshot.vocab_size:
        return name
    return f"{name} ({shown:,} of {snapshot.vocab_size:,} {'characters' if chars else 'tokens'})"


def nearest(embedding: np.ndarray, k: int = 3) -> np.ndarray:
    """Each point's ``k`` nearest others, nearest first: from squared distances as one (P, P)
    matrix product, not a (P, P, 3) array of differences (5,000 points: 100 MB, not 400)."""
    points = np.asarray(embedding, dtype=np.float64)
    squares = (points * points).sum(axis=1)
    d = squares[:, None] + squares[None, :] - 2 * points @ points.T
    np.fill_diagonal(d, np.inf)
    k = min(k, max(len(points) - 1, 0))
    if k == 0:
        return np.zeros((len(points), 0), dtype=np.int64)
    near = np.argpartition(d, k - 1, axis=1)[:, :k]
    return np.take_along_axis(near, np.argsort(np.take_along_axis(d, near, axis=1), axis=1), axis=1)


def fitted_axes(emb: np.ndarray, reach: float | None = None) -> list[list[float]]:
    """Each axis's range: ``[-reach, reach]`` when given (the same at every step, to compare
    steps), else fitted to these points: each axis centred on them, all as long as the widest
    with a margin (the cube draws them alike, so distances are not distorted)."""
    if reach:
        return [[-reach, reach]] * 3
    low, high = emb.min(axis=0), emb.max(axis=0)
    half = max(float((high - low).max()) * 0.56, 1e-3)
    return [[float(c) - half, float(c) + half] for c in (low + high) / 2]


def star_figure(snapshot, axis_range: float | None = None) -> dict:
    """``axis_range``: one reach for all axes (see ``fitted_axes``); None fits the shown step."""
    emb = np.asarray(snapshot.embedding, dtype=np.float32)
    ids = snapshot.star_ids
    tokens = [snapshot.vocab[int(i)] for i in ids]
    if snapshot.vocab.is_chars:
        labelled = set(range(min(len(ids), LABELLED)))
    else:
        read = list(dict.fromkeys(int(i) for i in snapshot.probe_ids))[:LABELLED_TOKENS]
        labelled = set(np.flatnonzero(np.isin(ids, read)).tolist())
    neighbours = nearest(emb)
    classes = [token_class(token) for token in tokens]
    traces = []
    for cls, colour in CLASSES.items():
        idx = [i for i, c in enumerate(classes) if c == cls]
        if not idx:
            continue
        traces.append({
            "type": "scatter3d", "x": typed(emb[idx, 0]), "y": typed(emb[idx, 1]), "z": typed(emb[idx, 2]),
            "mode": "markers+text", "name": cls, "text": [label(tokens[i]) if i in labelled else "" for i in idx],
            "textposition": "top center", "textfont": {"size": 12, "color": colour},
            "marker": {"size": 3, "color": colour, "opacity": 0.7},
            "customdata": [[label(tokens[i], 40), " ".join(label(tokens[j]) for j in neighbours[i])] for i in idx],
            "hovertemplate": "%{customdata[0]}  nearest: %{customdata[1]}<extra>" + cls + "</extra>",
        })
    axes = [{"range": r, "autorange": False, "showticklabels": False, "title": {"text": ""}}
            for r in fitted_axes(emb, axis_range)]
    return {
        "data": traces,
        "layout": {"margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "height": 290, "uirevision": "stars",
                   "scene": {"xaxis": axes[0], "yaxis": axes[1], "zaxis": axes[2], "aspectmode": "cube",
                             "camera": {"eye": {"x": 1.0, "y": 1.0, "z": 0.7}}},
                   "legend": {"orientation": "h", "y": 0}},
    }
