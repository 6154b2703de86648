"""The Attention Cinema tab: every layer's and head's attention on a fixed text at the shown
step, one head in detail, and how that head looked at the first snapshot."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html, no_update

from llmb_mlflow.errors import LLMBError

from .. import checks
from . import attention


def layout() -> html.Div:
    return html.Div([
        dcc.Graph(id="attention-grid", config={"displayModeBar": False}),
        html.Div([
            html.Label("layer"), dcc.Dropdown(id="layer", value=0, clearable=False, className="small-dd"),
            html.Label("head"), dcc.Dropdown(id="head", value=0, clearable=False, className="small-dd"),
        ], className="chart-controls"),
        html.Div([
            html.Div(dcc.Graph(id="attention-detail"), className="left"),
            html.Div(dcc.Graph(id="attention-evolution"), className="right"),
        ], className="row"),
    ])


def register(app, data) -> None:
    @app.callback(Output("attention-grid", "figure"), Output("attention-detail", "figure"),
                  Output("attention-evolution", "figure"), Output("run-error", "children", allow_duplicate=True),
                  Input("view", "data"), Input("tabs", "value"), Input("layer", "value"), Input("head", "value"),
                  State("run-state", "data"), State("steps", "data"), prevent_initial_call=True)
    def attention_panels(view, tab, layer, head, state, steps):
        if tab != "attention" or not state or not view:
            return no_update, no_update, no_update, no_update
        try:
            view, state, steps = checks.view(view), checks.run_state(state), checks.steps(steps)
            layer = checks.whole(layer or 0, "layer", 0, 63)
            head = checks.whole(head or 0, "head", 0, 63)
            run_id = data.check_run(state["run_id"])
        except LLMBError as exc:
            return no_update, no_update, no_update, f"Cannot show this view: {exc}"
        step = view["step"]
        if step is None or not steps or step not in steps:
            return no_update, no_update, no_update, no_update
        try:
            snap = data.snapshot(run_id, step)
            first = data.snapshot(run_id, steps[0])
        except LLMBError as exc:
            return no_update, no_update, no_update, f"Cannot show step {step}: {exc}"
        layer = min(layer, snap.n_layer - 1)
        head = min(head, snap.n_head - 1)
        return (attention.grid_figure(snap), attention.detail_figure(snap, layer, head),
                attention.evolution_figure(first, snap, layer, head), no_update)
