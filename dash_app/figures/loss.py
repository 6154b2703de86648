"""The loss chart: train_loss per step (raw and smoothed), val_loss points, a marker at the
shown step; a compared run's curves, and what happened during the training (events)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

RAW, SMOOTH, VAL = 0, 1, 2  # trace order; live updates extend them by index
OTHER_TRAIN, OTHER_VAL, EVENTS = 3, 4, 5  # always there, empty when unused
OTHER_COLOUR, EVENT_COLOUR = "#e8810c", "#6b4fbb"


def smooth(values: np.ndarray, weight: float, start: float | None = None) -> np.ndarray:
    """TensorBoard-style exponential moving average, debiased at the start."""
    out = np.empty(len(values))
    last, norm = (start, 1.0) if start is not None else (0.0, 0.0)
    for i, v in enumerate(values):
        last = weight * last + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = last / norm if norm else v
    return out


def thinned(steps: list[int], points: int) -> list[int]:
    """Which of a live run's new train-loss ``steps`` the chart adds (their indices): one every
    ``last step / points`` steps and the newest, so a chart loaded with about ``points`` of them
    grows slowly however long the training runs."""
    if not steps:
        return []
    every = max(1, steps[-1] // points)
    return [i for i, step in enumerate(steps) if step % every == 0 or i == len(steps) - 1]


def loss_figure(train_steps, train_values, val_steps, val_values, shown_step: int | None,
                smoothing: float = 0.6, log_scale: bool = False, other: dict | None = None,
                events: list | None = None, unit: str = "char.") -> go.Figure:
    """``other``: a compared run, {"name", "train": (steps, values), "val": (steps, values)};
    ``events``: (step, what happened) pairs, marked along the top of the chart; ``unit``: what
    the loss is per (a character, or a token of a run whose tokens are longer)."""
    train_values = np.asarray(train_values, dtype=float)
    fig = go.Figure([
        go.Scatter(x=list(train_steps), y=train_values.tolist(), name="train loss (raw)",
                   mode="lines", line=dict(color="rgba(31,119,180,0.25)", width=1)),
        go.Scatter(x=list(train_steps), y=smooth(train_values, smoothing).tolist(),
                   name="train loss", mode="lines", line=dict(color="#1f77b4", width=2)),
        go.Scatter(x=list(val_steps), y=list(val_values), name="validation loss",
                   mode="lines+markers", line=dict(color="#d62728", width=2), marker=dict(size=6)),
        *other_traces(other, smoothing),
        event_trace(events or []),
    ])
    fig.update_layout(
        margin=dict(l=50, r=10, t=46 if other else 6, b=36), height=270, uirevision="loss",
        xaxis_title="step", yaxis_title=f"loss (nats per {unit})",
        yaxis_type="log" if log_scale else "linear",
        # a compared run's curves add a legend row: then the legend goes above the plot
        legend=dict(orientation="h", y=1.0, x=0, xanchor="left", yanchor="bottom") if other else
        dict(orientation="h", y=0.98, x=0.99, xanchor="right", yanchor="top", bgcolor="rgba(255,255,255,0.8)"),
        clickmode="event", hovermode="x unified",
        shapes=[step_marker(shown_step), *event_lines(events or [])],
        yaxis2=dict(overlaying="y", range=[0, 1], visible=False, fixedrange=True),
    )
    return fig


def other_traces(other: dict | None, smoothing: float) -> list:
    """The compared run's smoothed train loss and validation points, dashed, in its own colour."""
    name = other["name"] if other else ""
    (train_steps, train_values), (val_steps, val_values) = (other["train"], other["val"]) if other else (([], []), ([], []))
    return [
        go.Scatter(x=list(train_steps), y=smooth(np.asarray(train_values, dtype=float), smoothing).tolist(),
                   name=f"{name}: train loss", mode="lines", showlegend=bool(other),
                   line=dict(color=OTHER_COLOUR, width=2, dash="dash")),
        go.Scatter(x=list(val_steps), y=list(val_values), name=f"{name}: validation loss", showlegend=bool(other),
                   mode="lines+markers", line=dict(color=OTHER_COLOUR, width=1, dash="dot"),
                   marker=dict(size=6, symbol="diamond")),
    ]


def event_trace(events: list) -> go.Scatter:
    """Events as markers along the top of the chart (a hidden axis 0..1 over the loss axis);
    hovering one says what happened, clicking one moves to the nearest snapshot."""
    return go.Scatter(x=[step for step, _ in events], y=[0.0] * len(events), yaxis="y2", name="events",
                      mode="markers", showlegend=bool(events), text=[what for _, what in events],
                      hovertemplate="%{text}<extra></extra>", cliponaxis=False,
                      marker=dict(symbol="triangle-up", size=11, color=EVENT_COLOUR,
                                  line=dict(color="#fff", width=1)))


def event_lines(events: list) -> list[dict]:
    """A faint line through the chart at each event's step (after the shown step's marker)."""
    return [dict(type="line", xref="x", yref="paper", x0=step, x1=step, y0=0, y1=1, layer="below",
                 line=dict(color="rgba(107,79,187,0.35)", width=1, dash="dot")) for step in sorted({s for s, _ in events})]


def step_marker(step: int | None) -> dict:
    x = 0 if step is None else step
    return dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                line=dict(color="#444", width=1, dash="dot"), visible=step is not None)


def perplexity(val_loss: float | None, among: str = "characters") -> str:
    if val_loss is None:
        return "perplexity -"
    return (f"perplexity {np.exp(val_loss):.1f}: the model is as unsure as a choice among "
            f"{np.exp(val_loss):.1f} {among}")


def event_list(facts: dict, first_step: int, last_step: int) -> list[tuple[int, str]]:
    """(step, what happened) from ``ViewerData.events``, in words, within the run's steps."""
    events = [(step, f"checkpoint at step {step}") for step in facts.get("checkpoints", [])]
    events += [(step, f"saved to the model library as {ref} (step {step})") for step, ref in facts.get("saves", [])]
    events += [(step, f"{'paused' if paused else 'resumed'} at step {step}") for step, paused in facts.get("pauses", [])]
    if facts.get("resumed_from"):
        events.append((first_step, f"continues {facts['resumed_from']} from its step {first_step}"))
    warmup = facts.get("warmup")
    if warmup and first_step < warmup <= last_step:
        events.append((warmup, f"warm-up ends at step {warmup}: the learning rate is at its peak"))
    return sorted(events)
