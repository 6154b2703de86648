"""The probability tower: at each position of the shown sample, the five most likely next
characters and how likely each was, with the sampled one marked."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

ROWS = 5


def reweight(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities at another temperature, renormalised over the recorded top characters."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1) ** (1.0 / temperature)
    return p / p.sum(axis=-1, keepdims=True)


def visible(ch: str) -> str:
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(ch, ch)


def tower_figure(snapshot, temperature: float = 1.0) -> go.Figure:
    probs = reweight(snapshot.topk_probs, temperature)[:, :ROWS]
    ids = snapshot.topk_ids[:, :ROWS]
    n = len(snapshot.sample_ids)
    chars = np.array([[visible(snapshot.vocab[int(i)]) for i in row] for row in ids])
    fig = go.Figure(go.Heatmap(
        z=probs.T, x=list(range(n)), y=[f"#{r + 1}" for r in range(ROWS)], text=chars.T,
        texttemplate="%{text}", zmin=0, zmax=1, colorscale="Blues", showscale=True,
        colorbar=dict(title="p", thickness=10),
        hovertemplate="position %{x}<br>%{text}: %{z:.1%}<extra></extra>",
    ))
    ranks = [np.where(row == s)[0] for row, s in zip(ids, snapshot.sample_ids)]
    marked = [(i, r[0]) for i, r in enumerate(ranks) if len(r)]
    fig.add_trace(go.Scatter(
        x=[i for i, _ in marked], y=[f"#{r + 1}" for _, r in marked], mode="markers",
        marker=dict(symbol="square-open", size=18, color="#d62728", line=dict(width=2)),
        name="sampled", hoverinfo="skip"))
    fig.update_layout(
        margin=dict(l=40, r=10, t=30, b=30), height=260, uirevision="tower",
        yaxis=dict(autorange="reversed"), xaxis=dict(range=[-0.5, min(n, 60) - 0.5], title="position in the sample"),
        title=dict(text=f"next-character probabilities at temperature {temperature:g} "
                        "(red box: the character that was sampled)", font=dict(size=13)),
        showlegend=False,
    )
    return fig
