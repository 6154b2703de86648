"""The loss chart: train_loss per step (raw and smoothed), val_loss points, a marker at the
shown step."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

RAW, SMOOTH, VAL = 0, 1, 2  # trace order; live updates extend them by index


def smooth(values: np.ndarray, weight: float, start: float | None = None) -> np.ndarray:
    """TensorBoard-style exponential moving average, debiased at the start."""
    out = np.empty(len(values))
    last, norm = (start, 1.0) if start is not None else (0.0, 0.0)
    for i, v in enumerate(values):
        last = weight * last + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = last / norm if norm else v
    return out


def loss_figure(train_steps, train_values, val_steps, val_values, shown_step: int | None,
                smoothing: float = 0.6, log_scale: bool = False) -> go.Figure:
    train_values = np.asarray(train_values, dtype=float)
    fig = go.Figure([
        go.Scattergl(x=list(train_steps), y=train_values.tolist(), name="train loss (raw)",
                     mode="lines", line=dict(color="rgba(31,119,180,0.25)", width=1)),
        go.Scattergl(x=list(train_steps), y=smooth(train_values, smoothing).tolist(),
                     name="train loss", mode="lines", line=dict(color="#1f77b4", width=2)),
        go.Scatter(x=list(val_steps), y=list(val_values), name="validation loss",
                   mode="lines+markers", line=dict(color="#d62728", width=2), marker=dict(size=6)),
    ])
    fig.update_layout(
        margin=dict(l=50, r=10, t=6, b=36), height=270, uirevision="loss",
        xaxis_title="step", yaxis_title="loss (nats per char.)",
        yaxis_type="log" if log_scale else "linear",
        legend=dict(orientation="h", y=0.98, x=0.99, xanchor="right", yanchor="top",
                    bgcolor="rgba(255,255,255,0.8)"),
        clickmode="event", hovermode="x unified",
        shapes=[step_marker(shown_step)],
    )
    return fig


def step_marker(step: int | None) -> dict:
    x = 0 if step is None else step
    return dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                line=dict(color="#444", width=1, dash="dot"), visible=step is not None)


def perplexity(val_loss: float | None) -> str:
    if val_loss is None:
        return "perplexity -"
    return (f"perplexity {np.exp(val_loss):.1f}: the model is as unsure as a choice among "
            f"{np.exp(val_loss):.1f} characters")
