"""The probability tower: at each position of the shown sample, the five most likely next
tokens (characters, for a character model) and how likely each was, with the sampled one marked."""

from __future__ import annotations

import numpy as np

from .plotly_json import typed

ROWS = 5
CHAR_COLUMNS, TOKEN_COLUMNS = 60, 24  # positions shown at once (a token's label is wider)


def reweight(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities at another temperature, renormalised over the recorded top characters."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1) ** (1.0 / temperature)
    return p / p.sum(axis=-1, keepdims=True)


def tower_figure(snapshot, temperature: float = 1.0) -> dict:
    probs = reweight(snapshot.topk_probs, temperature)[:, :ROWS]
    ids = snapshot.topk_ids[:, :ROWS]
    n = len(snapshot.sample_ids)
    vocab = snapshot.vocab
    labels = [vocab.labels(column) for column in ids.T]
    whole = [vocab.labels(column, limit=200) for column in ids.T]
    rows = [f"#{r + 1}" for r in range(ROWS)]
    ranks = [np.where(row == s)[0] for row, s in zip(ids, snapshot.sample_ids)]
    marked = [(i, int(r[0])) for i, r in enumerate(ranks) if len(r)]
    shown = min(n, CHAR_COLUMNS if vocab.is_chars else TOKEN_COLUMNS)
    across = "position in the sample" + (f": the first {shown} of {n}, drag sideways for the rest" if n > shown else "")
    return {
        "data": [
            {"type": "heatmap", "z": typed(probs.T.astype(np.float32)), "x": list(range(n)), "y": rows,
             "text": labels, "customdata": whole, "texttemplate": "%{text}", "zmin": 0, "zmax": 1, "colorscale": "Blues", "reversescale": True,
             "colorbar": {"title": {"text": "p"}, "thickness": 10},
             "hovertemplate": "position %{x}<br>%{customdata}: %{z:.1%}<extra></extra>"},
            {"type": "scatter", "x": [i for i, _ in marked], "y": [rows[r] for _, r in marked],
             "mode": "markers", "name": "sampled", "hoverinfo": "skip",
             "marker": {"symbol": "square-open", "size": 18, "color": "#d62728", "line": {"width": 2}}},
        ],
        "layout": {
            "margin": {"l": 40, "r": 10, "t": 24, "b": 40}, "height": 255, "uirevision": "tower",
            "yaxis": {"autorange": "reversed", "fixedrange": True}, "dragmode": "pan",
            "xaxis": {"range": [-0.5, shown - 0.5], "title": {"text": across}},
            "title": {"text": f"top 5 next {'characters' if vocab.is_chars else 'tokens'} · temperature "
                              f"{temperature:g} · red box: the one drawn",
                      "font": {"size": 11}, "x": 0, "xref": "paper", "xanchor": "left"},
            "showlegend": False,
        },
    }
