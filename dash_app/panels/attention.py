"""Attention Cinema: every layer x head at the shown step, one head in detail, and its
evolution from the first snapshot."""

from __future__ import annotations

import numpy as np

from .plotly_json import typed
from .probability_tower import visible

SCALE = "Viridis"
GAP = 3  # blank cells between the tiles of the grid


def grid_figure(snapshot) -> dict:
    """All heads as tiles of one heatmap (layers down, heads across), on a square-root scale
    so weak but real attention stays visible; 8-bit levels keep it light."""
    att = np.sqrt(np.clip(np.asarray(snapshot.attention, dtype=np.float32), 0, 1))
    layers, heads, t, _ = att.shape
    side = t + GAP
    tiles = np.full((layers * side - GAP, heads * side - GAP), np.nan, dtype=np.float32)
    for layer in range(layers):
        for head in range(heads):
            tiles[layer * side:layer * side + t, head * side:head * side + t] = att[layer, head]
    labels = ([_label(head * side + t / 2, -1, f"head {head + 1}", "bottom") for head in range(heads)]
              + [_label(-2, layer * side + t / 2, f"layer {layer + 1}", "middle", "right")
                 for layer in range(layers)])
    return {
        "data": [{"type": "heatmap", "z": typed(tiles), "zmin": 0, "zmax": 1, "colorscale": SCALE,
                  "showscale": False, "hoverinfo": "skip"}],
        "layout": {"margin": {"l": 60, "r": 10, "t": 30, "b": 10}, "height": max(150 * layers, 320),
                   "xaxis": {"visible": False}, "yaxis": {"visible": False, "autorange": "reversed",
                                                           "scaleanchor": "x"},
                   "annotations": labels, "uirevision": "grid", "plot_bgcolor": "white"},
    }


def _label(x, y, text, yanchor, xanchor="center"):
    return {"x": x, "y": y, "text": text, "showarrow": False, "xref": "x", "yref": "y",
            "yanchor": yanchor, "xanchor": xanchor, "font": {"size": 11}}


def head_heatmap(snapshot, layer: int, head: int, axes: str = "", showscale: bool = True) -> dict:
    chars = [visible(c) for c in snapshot.probe]
    return {"type": "heatmap", "z": typed(np.asarray(snapshot.attention[layer, head], dtype=np.float32)),
            "zmin": 0, "zmax": 1, "colorscale": SCALE, "showscale": showscale,
            "colorbar": {"thickness": 10}, "xaxis": "x" + axes, "yaxis": "y" + axes,
            "text": [[f"{chars[r]} → {chars[c]}" for c in range(len(chars))] for r in range(len(chars))],
            "hovertemplate": "%{text}: %{z:.2f}<extra></extra>"}


def _char_axis(snapshot, title: str, domain, **extra) -> dict:
    chars = [visible(c) for c in snapshot.probe]
    return {"tickmode": "array", "tickvals": list(range(len(chars))), "ticktext": chars,
            "tickfont": {"size": 9}, "title": {"text": title}, "domain": domain, **extra}


def detail_figure(snapshot, layer: int, head: int) -> dict:
    return {
        "data": [head_heatmap(snapshot, layer, head)],
        "layout": {"margin": {"l": 60, "r": 10, "t": 30, "b": 50}, "height": 520, "uirevision": "detail",
                   "title": {"text": f"layer {layer + 1}, head {head + 1} at step {snapshot.step}",
                             "font": {"size": 13}},
                   "xaxis": _char_axis(snapshot, "attends to", [0, 1]),
                   "yaxis": _char_axis(snapshot, "reading", [0, 1], autorange="reversed")},
    }


def evolution_figure(first, shown, layer: int, head: int) -> dict:
    left, right = [0, 0.46], [0.54, 1]
    return {
        "data": [head_heatmap(first, layer, head, showscale=False),
                 head_heatmap(shown, layer, head, axes="2")],
        "layout": {
            "margin": {"l": 60, "r": 10, "t": 40, "b": 50}, "height": 420, "uirevision": "evolution",
            "xaxis": _char_axis(first, "attends to", left), "yaxis": _char_axis(first, "reading", [0, 1],
                                                                                autorange="reversed"),
            "xaxis2": _char_axis(shown, "attends to", right, anchor="y2"),
            "yaxis2": _char_axis(shown, "", [0, 1], autorange="reversed", anchor="x2"),
            "annotations": [
                {"text": f"step {first.step}", "x": 0.23, "y": 1.06, "xref": "paper", "yref": "paper",
                 "showarrow": False},
                {"text": f"step {shown.step}", "x": 0.77, "y": 1.06, "xref": "paper", "yref": "paper",
                 "showarrow": False},
            ],
        },
    }
