"""The Attention Cinema tab: every layer's and head's attention on a fixed text at the shown
step, one head in detail, and how that head looked at the first snapshot."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html, no_update

from llmb_mlflow.errors import LLMBError

from .. import checks
from ..answers import answer
from ..figures import attention
from ..figures.plotly_json import notice
from . import compare, entropy, tour


def layout() -> html.Div:
    return html.Div([
        html.Section([
            tour.heading("Every head at this step", "attention"),
            compare.pair(dcc.Graph(id="attention-grid", config={"displayModeBar": False}),
                         dcc.Graph(id="attention-grid-b", config={"displayModeBar": False}), "grid"),
            html.P(id="compare-note", className="compare-note"),
            html.Div([
                html.Label("layer"), dcc.Dropdown(id="layer", value=0, clearable=False, className="small-dd"),
                html.Label("head"), dcc.Dropdown(id="head", value=0, clearable=False, className="small-dd"),
                html.Small("or click a tile"),
            ], className="chart-controls"),
            dcc.Store(id="grid-shape"),
        ], id="attention-panel", className="panel"),
        html.Section([tour.heading("The selected head", "detail"),
                      compare.pair(dcc.Graph(id="attention-detail", config={"displayModeBar": False}),
                                   dcc.Graph(id="attention-detail-b", config={"displayModeBar": False}), "detail")],
                     id="detail-panel", className="panel"),
        html.Section([tour.heading("The selected head then and now", "evolution"),
                      dcc.Graph(id="attention-evolution", config={"displayModeBar": False})],
                     id="evolution-panel", className="panel wide"),
        entropy.layout(),
    ], className="cinema-grid")


def register(app, data) -> None:
    entropy.register(app, data)

    panels = dict(grid=Output("attention-grid", "figure"), detail=Output("attention-detail", "figure"),
                  evolution=Output("attention-evolution", "figure"), shape=Output("grid-shape", "data"),
                  error=Output("run-error", "children", allow_duplicate=True))

    @app.callback(output=panels,
                  inputs=[Input("view", "data"), Input("tabs", "value"), Input("layer", "value"), Input("head", "value")],
                  state=[State("run-state", "data"), State("steps", "data")], prevent_initial_call=True)
    def attention_panels(view, tab, layer, head, state, steps):
        if tab != "attention" or not state or not view:
            return answer(panels)
        try:
            view, state, steps = checks.view(view), checks.run_state(state), checks.steps(steps)
            layer = checks.whole(layer or 0, "layer", 0, 63)
            head = checks.whole(head or 0, "head", 0, 63)
            run_id = data.check_run(state["run_id"])
        except LLMBError as exc:
            return answer(panels, error=f"Cannot show this view: {exc}")
        step = view["step"]
        if step is None or not steps or step not in steps:
            return answer(panels)
        try:
            snap = data.snapshot(run_id, step)
            first = data.snapshot(run_id, steps[0])
        except LLMBError as exc:
            return answer(panels, error=f"Cannot show step {step}: {exc}")
        if not snap.n_layer:
            said = notice(attention.NO_ATTENTION)
            return answer(panels, grid=said, detail=said, evolution=said, shape=None)
        layer = min(layer, snap.n_layer - 1)
        head = min(head, snap.n_head - 1)
        shape = {"side": attention.grid_side(snap), "layers": snap.n_layer, "heads": snap.n_head}
        return answer(panels, grid=attention.grid_figure(snap, layer, head),
                      detail=attention.detail_figure(snap, layer, head),
                      evolution=attention.evolution_figure(first, snap, layer, head), shape=shape)

    @app.callback(Output("layer", "value", allow_duplicate=True), Output("head", "value", allow_duplicate=True),
                  Input("attention-grid", "clickData"), State("grid-shape", "data"), prevent_initial_call=True)
    def select_head(click, shape):
        try:
            side = checks.whole(shape["side"], "side", 1, 10**6)
            layers, heads = (checks.whole(shape[k], k, 1, 64) for k in ("layers", "heads"))
        except (LLMBError, TypeError, KeyError):
            return no_update, no_update
        chosen = attention.clicked_head(click, side, layers, heads)
        return chosen if chosen else (no_update, no_update)
