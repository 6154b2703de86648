"""Attention entropy per head over the steps: small multiples, a layer per row and a line per
head, the shown step marked in each row; a clicked point names its layer and head."""

from __future__ import annotations

import math

from llmb_mlflow.training.attention_stats import uniform_entropy

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")  # a head keeps its colour in every row
ROW_PX, GAP_PX, MAX_HEIGHT = 90, 18, 760
MARGIN = {"l": 56, "r": 10, "t": 28, "b": 40}
MARKERS_UP_TO = 300  # points per line drawn with markers (more: a plain line, still clickable)


def _suffix(row: int) -> str:
    return "" if row == 0 else str(row + 1)


def step_markers(layers: int, step: int | None) -> list[dict]:
    """The shown step as a vertical line in each layer's row (the figure's first shapes)."""
    x = 0 if step is None else step
    return [{"type": "line", "xref": f"x{_suffix(row)}", "yref": f"y{_suffix(row)} domain",
             "x0": x, "x1": x, "y0": 0, "y1": 1, "visible": step is not None,
             "line": {"color": "#444", "width": 1, "dash": "dot"}} for row in range(layers)]


def rows(histories: dict) -> int:
    return max(layer for layer, _ in histories) + 1


def entropy_figure(histories: dict, shown: int | None, probe_length: int | None = None) -> dict:
    """``histories``: {(layer, head): (steps, entropies)}, 0-based; ``probe_length``: the probe's
    characters, for the dotted line of attention spread evenly (the most a head can have)."""
    layers = rows(histories)
    ceiling = uniform_entropy(probe_length) if probe_length else None
    top = max([ceiling or 0.0, *(max(values, default=0.0) for _, values in histories.values())]) * 1.08 or 1.0
    height = min(MARGIN["t"] + MARGIN["b"] + ROW_PX * layers + GAP_PX * (layers - 1), MAX_HEIGHT)
    gap = GAP_PX / (height - MARGIN["t"] - MARGIN["b"])  # between two rows, of the plot's height
    row_share = (1 - gap * (layers - 1)) / layers
    data, axes = [], {}
    for (layer, head), (steps, values) in sorted(histories.items()):
        suffix = _suffix(layer)
        data.append({
            "type": "scatter", "x": list(steps), "y": list(values), "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
            "mode": "lines+markers" if len(steps) <= MARKERS_UP_TO else "lines",
            "name": f"head {head + 1}", "legendgroup": f"head {head + 1}", "showlegend": layer == 0,
            "line": {"color": COLOURS[head % len(COLOURS)], "width": 1.5}, "marker": {"size": 4},
            "customdata": [[layer + 1, head + 1, math.exp(v)] for v in values],
            "hovertemplate": "layer %{customdata[0]}, head %{customdata[1]} at step %{x}: entropy %{y:.2f} nats "
                             "(spread over ~%{customdata[2]:.1f} characters)<extra></extra>",
        })
    for row in range(layers):
        suffix, bottom = _suffix(row), row == layers - 1
        low = 1 - (row + 1) * row_share - row * gap  # row 0 on top
        axes[f"xaxis{suffix}"] = {"anchor": f"y{suffix}", "showticklabels": bottom, "zeroline": False,
                                  **({"matches": "x"} if row else {}),
                                  **({"title": {"text": "step", "font": {"size": 12}}} if bottom else {})}
        axes[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "domain": [max(low, 0), low + row_share],
                                  "range": [0, top], "fixedrange": True, "nticks": 4, "tickfont": {"size": 10},
                                  "title": {"text": f"layer {row + 1}", "font": {"size": 11}, "standoff": 4}}
    ceilings = [] if ceiling is None else [
        {"type": "line", "xref": f"x{_suffix(row)} domain", "yref": f"y{_suffix(row)}", "x0": 0, "x1": 1,
         "y0": ceiling, "y1": ceiling, "line": {"color": "#999", "width": 1, "dash": "dot"}} for row in range(layers)]
    notes = [] if ceiling is None else [
        {"text": "attention spread evenly", "xref": "x domain", "yref": "y", "x": 1, "y": ceiling,
         "xanchor": "right", "yanchor": "bottom", "showarrow": False, "font": {"size": 10, "color": "#777"}}]
    return {
        "data": data,
        "layout": {"height": height, "margin": MARGIN, "uirevision": "entropy",
                   "hovermode": "closest", "clickmode": "event",
                   "legend": {"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom", "font": {"size": 11}},
                   "shapes": [*step_markers(layers, shown), *ceilings], "annotations": notes, **axes},
    }


def clicked_head(click) -> tuple[int, int] | None:
    """The 0-based (layer, head) of a clicked point, as the page sent it; None if it is not one."""
    try:
        layer, head = click["points"][0]["customdata"][:2]
    except (TypeError, KeyError, IndexError, ValueError):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in (layer, head)):
        return None
    return layer - 1, head - 1
