"""A run as one self-contained HTML page that works offline, for someone without MLflow: its
loss chart (interactive Plotly, with plotly.js written into the page), its settings, the
attention of every layer and head at a few steps, and the sample it wrote at every snapshot.

The page fetches nothing: no script, style sheet, font or picture comes from anywhere else
(plotly.js is inlined once, Plotly's logo link is switched off, the styles use system fonts).
"""

from __future__ import annotations

import html
import time

import numpy as np

from ..formats.snapshot import Snapshot

PLOT_CONFIG = {"displaylogo": False, "responsive": True}  # the logo would link to plotly's site
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
           "#b5de2b", "#fde725")
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9rem; } td, th { padding: 2px 12px 2px 0; text-align: left; }
th { color: #555; font-weight: normal; }
pre { background: #f6f6f6; padding: 0.5rem 0.75rem; white-space: pre-wrap; margin: 0.2rem 0 0.8rem; }
.step { font-weight: 600; color: #1f77b4; }
"""


def sqrt_viridis() -> list:
    """Viridis on a square-root scale (as the viewer shows attention): weak but real attention
    stays visible while the hover still says the weight itself."""
    stops = np.linspace(0, 1, len(VIRIDIS))
    return [[float(s * s), colour] for s, colour in zip(stops, VIRIDIS)]


def loss_figure(train: tuple[list, list], val: tuple[list, list]) -> dict:
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "name": "train loss", "x": train[0], "y": train[1],
             "line": {"color": "#1f77b4", "width": 1}, "hovertemplate": "step %{x}: %{y:.4f}<extra>train</extra>"},
            {"type": "scatter", "mode": "markers", "name": "validation loss", "x": val[0], "y": val[1],
             "marker": {"color": "#ff7f0e", "size": 6},
             "hovertemplate": "step %{x}: %{y:.4f}<extra>validation</extra>"},
        ],
        "layout": {"height": 380, "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
                   "xaxis": {"title": {"text": "step"}}, "yaxis": {"title": {"text": "loss"}},
                   "legend": {"x": 1, "xanchor": "right", "y": 1}, "hovermode": "x unified"},
    }


def attention_figure(snap: Snapshot) -> dict:
    """Every layer (rows) and head (columns) on the probe text; hover names both characters."""
    layers, heads, t, _ = snap.attention.shape
    if not layers:  # a model recorded through a view that shows no attention
        return {"data": [], "layout": {"annotations": [{"text": "This model records no attention maps.",
                                                        "showarrow": False, "xref": "paper", "yref": "paper"}],
                                       "xaxis": {"visible": False}, "yaxis": {"visible": False}}}
    labels = [f"{i} {shown}" for i, shown in enumerate(snap.vocab.labels(snap.probe_ids, limit=40))]
    gap = 0.02
    width, height = (1 - gap * (heads - 1)) / heads, (1 - gap * (layers - 1)) / layers
    data, layout = [], {}
    for layer in range(layers):
        for head in range(heads):
            n = layer * heads + head + 1
            suffix = "" if n == 1 else str(n)
            data.append({"type": "heatmap", "z": np.round(snap.attention[layer, head].astype(np.float32), 4),
                         "x": labels, "y": labels, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                         "zmin": 0, "zmax": 1, "colorscale": sqrt_viridis(), "showscale": n == 1,
                         "colorbar": {"title": {"text": "weight"}, "thickness": 10},
                         "hovertemplate": f"layer {layer + 1}, head {head + 1}<br>%{{y}} looks at %{{x}}: "
                                          "%{z:.3f}<extra></extra>"})
            x0, y1 = head * (width + gap), 1 - layer * (height + gap)
            bare = {"showticklabels": False, "ticks": "", "showgrid": False, "zeroline": False,
                    "anchor": f"y{suffix}"}
            layout[f"xaxis{suffix}"] = {**bare, "domain": [x0, x0 + width], "side": "top",
                                        "title": {"text": f"head {head + 1}" if layer == 0 else ""}}
            layout[f"yaxis{suffix}"] = {**bare, "domain": [y1 - height, y1], "autorange": "reversed",
                                        "anchor": f"x{suffix}", "scaleanchor": f"x{suffix}",
                                        "title": {"text": f"layer {layer + 1}" if head == 0 else ""}}
    layout.update(height=max(170 * layers, 300), margin={"l": 60, "r": 20, "t": 40, "b": 10})
    return {"data": data, "layout": layout}


def page(run, train: tuple[list, list], val: tuple[list, list], samples: list[tuple[int, str]],
         grids: list[Snapshot]) -> str:
    """The whole page of ``run`` (a ``RunSummary``): ``samples`` are (step, text) of every snapshot,
    ``grids`` the snapshots whose attention it shows."""
    import plotly.io

    def plot(figure: dict, first: bool) -> str:
        return plotly.io.to_html(figure, include_plotlyjs=first, full_html=False, config=PLOT_CONFIG,
                                 validate=False)

    e = html.escape
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime((run.start_time or 0) / 1000))
    settings = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in sorted(run.params.items()))
    attention = "".join(
        f"<h3>step {snap.step:,}</h3>{plot(attention_figure(snap), False)}"
        f"<p>The text every head reads (positions from 0):</p><pre>{e(snap.probe)}</pre>" for snap in grids
    ) or "<p>This run has no snapshots yet.</p>"
    written = "".join(f'<div><span class="step">step {step:,}</span><pre>{e(text)}</pre></div>'
                      for step, text in samples) or "<p>This run has no snapshots yet.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(run.run_name or run.run_id)} · LLMBreaker</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>{e(run.run_name or run.run_id)}</h1>
<p class="meta">LLMBreaker run {e(run.run_id)} · {e(run.status.lower())} · step {run.last_step:,}
of {f"{run.max_iters:,}" if run.max_iters else "?"} · started {started}</p>
<h2>Loss</h2>
{plot(loss_figure(train, val), True)}
<h2>Settings</h2>
<table>{settings}</table>
<h2>Attention</h2>
<p>How much each character of a fixed text (rows) looks at each earlier one (columns), for every
layer and head; hover a cell for the characters and the weight.</p>
{attention}
<h2>What it wrote</h2>
<p>The sample written at every snapshot, from the same prompt and seed.</p>
{written}
<p class="meta">Exported by LLMBreaker on {time.strftime("%Y-%m-%d %H:%M")}.</p>
</body></html>
"""
