"""Attention Cinema: every layer x head at the shown step, one head in detail, and its
evolution from the first snapshot."""

from __future__ import annotations

import numpy as np

from .plotly_json import typed

NO_ATTENTION = "This model records no attention maps."
SCALE = "Viridis"
GAP = 3  # blank cells between the tiles of the grid


def grid_side(snapshot) -> int:
    """How many cells one tile and its gap take in the grid."""
    return len(snapshot.probe_ids) + GAP


def clicked_head(click, side: int, layers: int, heads: int) -> tuple[int, int] | None:
    """(layer, head) of a click on the grid, as the page sent it; None if it is not one."""
    try:
        x, y = click["points"][0]["x"], click["points"][0]["y"]
    except (TypeError, KeyError, IndexError):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 2**31 for v in (x, y)):
        return None
    layer, head = int(y) // side, int(x) // side
    return (layer, head) if layer < layers and head < heads else None


def grid_figure(snapshot, layer: int = 0, head: int = 0) -> dict:
    """All heads as tiles of one heatmap (layers down, heads across), on a square-root scale
    so weak but real attention stays visible; 8-bit levels keep it light. The selected head
    is outlined; a click on a tile selects it."""
    att = np.sqrt(np.clip(np.asarray(snapshot.attention, dtype=np.float32), 0, 1))
    layers, heads, t, _ = att.shape
    side = grid_side(snapshot)
    tiles = np.full((layers * side - GAP, heads * side - GAP), np.nan, dtype=np.float32)
    for row in range(layers):
        for column in range(heads):
            tiles[row * side:row * side + t, column * side:column * side + t] = att[row, column]
    labels = ([_label(column * side + t / 2, -1, f"head {column + 1}", "bottom") for column in range(heads)]
              + [_label(-2, row * side + t / 2, f"layer {row + 1}", "middle", "right") for row in range(layers)])
    return {
        "data": [{"type": "heatmap", "z": typed(tiles), "zmin": 0, "zmax": 1, "colorscale": SCALE,
                  "showscale": False, "hoverinfo": "none"}],
        "layout": {"margin": {"l": 60, "r": 10, "t": 24, "b": 6}, "height": min(max(105 * layers, 240), 560),
                   "shapes": [{"type": "rect", "xref": "x", "yref": "y", "line": {"color": "#d62728", "width": 3},
                               "x0": head * side - 1.5, "x1": head * side + t + 0.5,
                               "y0": layer * side - 1.5, "y1": layer * side + t + 0.5}],
                   "xaxis": {"visible": False}, "yaxis": {"visible": False, "autorange": "reversed",
                                                           "scaleanchor": "x"},
                   "annotations": labels, "uirevision": "grid", "plot_bgcolor": "white"},
    }


def _label(x, y, text, yanchor, xanchor="center"):
    return {"x": x, "y": y, "text": text, "showarrow": False, "xref": "x", "yref": "y",
            "yanchor": yanchor, "xanchor": xanchor, "font": {"size": 11}}


def head_heatmap(snapshot, layer: int, head: int, axes: str = "", showscale: bool = True) -> dict:
    chars = snapshot.vocab.labels(snapshot.probe_ids, limit=40)
    return {"type": "heatmap", "z": typed(np.asarray(snapshot.attention[layer, head], dtype=np.float32)),
            "zmin": 0, "zmax": 1, "colorscale": SCALE, "showscale": showscale,
            "colorbar": {"thickness": 10}, "xaxis": "x" + axes, "yaxis": "y" + axes,
            "text": [[f"{chars[r]} → {chars[c]}" for c in range(len(chars))] for r in range(len(chars))],
            "hovertemplate": "%{text}: %{z:.2f}<extra></extra>"}


def _char_axis(snapshot, title: str, domain, labels: int = 32, **extra) -> dict:
    """An axis of probe tokens, every few labelled (about ``labels`` of them, fewer of tokens
    longer than a character) so each is readable."""
    chars = snapshot.vocab.labels(snapshot.probe_ids, limit=6)
    labels = labels if snapshot.vocab.is_chars else max(1, labels // 2)
    every = max(1, -(-len(chars) // labels))
    ticks = list(range(0, len(chars), every))
    return {"tickmode": "array", "tickvals": ticks, "ticktext": [chars[i] for i in ticks], "tickangle": 0,
            "tickfont": {"size": 12, "family": "monospace"}, "title": {"text": title, "font": {"size": 12}},
            "domain": domain, **extra}


def detail_figure(snapshot, layer: int, head: int) -> dict:
    return {
        "data": [head_heatmap(snapshot, layer, head)],
        "layout": {"margin": {"l": 60, "r": 10, "t": 30, "b": 50}, "height": 470, "uirevision": "detail",
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
            "margin": {"l": 60, "r": 10, "t": 40, "b": 50}, "height": 400, "uirevision": "evolution",
            "xaxis": _char_axis(first, "attends to", left, 16),
            "yaxis": _char_axis(first, "reading", [0, 1], 22, autorange="reversed"),
            "xaxis2": _char_axis(shown, "attends to", right, 16, anchor="y2"),
            "yaxis2": _char_axis(shown, "", [0, 1], 22, autorange="reversed", anchor="x2"),
            "annotations": [
                {"text": f"step {first.step}", "x": 0.23, "y": 1.06, "xref": "paper", "yref": "paper",
                 "showarrow": False},
                {"text": f"step {shown.step}", "x": 0.77, "y": 1.06, "xref": "paper", "yref": "paper",
                 "showarrow": False},
            ],
        },
    }
