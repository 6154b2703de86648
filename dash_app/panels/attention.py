"""Attention Cinema: every layer x head at the shown step, one head in detail, and its
evolution from the first snapshot."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .probability_tower import visible

SCALE = "Viridis"


def grid_figure(snapshot) -> go.Figure:
    att = np.asarray(snapshot.attention, dtype=np.float32)
    layers, heads = att.shape[:2]
    fig = make_subplots(rows=layers, cols=heads, horizontal_spacing=0.01, vertical_spacing=0.02,
                        row_titles=[f"layer {l + 1}" for l in range(layers)],
                        column_titles=[f"head {h + 1}" for h in range(heads)])
    for l in range(layers):
        for h in range(heads):
            fig.add_trace(go.Heatmap(z=np.sqrt(att[l, h]), zmin=0, zmax=1, colorscale=SCALE,
                                     showscale=False, hoverinfo="skip"), row=l + 1, col=h + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(margin=dict(l=10, r=30, t=30, b=10), height=max(140 * layers, 300),
                      uirevision="grid")
    return fig


def head_heatmap(snapshot, layer: int, head: int) -> go.Heatmap:
    chars = [visible(c) for c in snapshot.probe]
    positions = list(range(len(chars)))
    return go.Heatmap(
        z=np.asarray(snapshot.attention[layer, head], dtype=np.float32), x=positions, y=positions,
        zmin=0, zmax=1, colorscale=SCALE, customdata=np.array([[f"{chars[r]} → {chars[c]}"
                                                                for c in positions] for r in positions]),
        hovertemplate="%{customdata}: %{z:.2f}<extra></extra>", colorbar=dict(thickness=10))


def _char_axes(fig, snapshot, **where):
    chars = [visible(c) for c in snapshot.probe]
    ticks = dict(tickmode="array", tickvals=list(range(len(chars))), ticktext=chars, tickfont=dict(size=9))
    fig.update_xaxes(title="attends to", **ticks, **where)
    fig.update_yaxes(title="reading", autorange="reversed", **ticks, **where)


def detail_figure(snapshot, layer: int, head: int) -> go.Figure:
    fig = go.Figure(head_heatmap(snapshot, layer, head))
    _char_axes(fig, snapshot)
    fig.update_layout(margin=dict(l=60, r=10, t=30, b=50), height=520, uirevision="detail",
                      title=dict(text=f"layer {layer + 1}, head {head + 1} at step {snapshot.step}",
                                 font=dict(size=13)))
    return fig


def evolution_figure(first, shown, layer: int, head: int) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=[f"step {first.step}", f"step {shown.step}"])
    fig.add_trace(head_heatmap(first, layer, head), row=1, col=1)
    fig.add_trace(head_heatmap(shown, layer, head).update(showscale=False), row=1, col=2)
    for col in (1, 2):
        _char_axes(fig, shown, row=1, col=col)
    fig.update_layout(margin=dict(l=60, r=10, t=40, b=50), height=420, uirevision="evolution")
    return fig
