"""Attention entropy per head over the steps (Attention Cinema): small multiples, a layer per
row and a line per head, the shown step marked in each row. A click on a point shows that step
(``assets/scrubber.js`` treats it as a click on the loss chart) and selects that head.

The metrics are logged by the trainer (``attn_entropy/l{layer}h{head}``; what they measure:
``llmb_mlflow/training/attention_stats.py``); runs trained before that have none, and the panel says so."""

from __future__ import annotations

from dash import Input, Output, Patch, State, dcc, html, no_update

from llmb_mlflow.errors import LLMBError

from .. import checks
from ..answers import answer
from ..figures.entropy import clicked_head, entropy_figure, rows, step_markers
from . import tour

NONE_RECORDED = "No attention entropy recorded for this run (it was trained before LLMBreaker measured it)."


def layout() -> html.Section:
    return html.Section([
        tour.heading("How focused each head is, step by step", "entropy"),
        html.Div(id="attn-entropy-note", className="entropy-note"),
        dcc.Graph(id="attn-entropy", config={"displayModeBar": False}, style={"display": "none"}),
        dcc.Store(id="attn-entropy-drawn"),  # what the figure shows (run, last snapshot, rows), to move its markers
    ], id="entropy-panel", className="panel wide")


def register(app, data) -> None:
    shown = dict(figure=Output("attn-entropy", "figure"), style=Output("attn-entropy", "style"),
                 note=Output("attn-entropy-note", "children"), drawn=Output("attn-entropy-drawn", "data"))

    @app.callback(output=shown, inputs=[Input("view", "data"), Input("tabs", "value"), Input("steps", "data")],
                  state=[State("run-state", "data"), State("attn-entropy-drawn", "data")], prevent_initial_call=True)
    def show_entropy(view, tab, steps, state, drawn):
        if tab != "attention" or not state or not view:
            return answer(shown)
        try:
            view, state, steps = checks.view(view), checks.run_state(state), checks.steps(steps)
            run_id = data.check_run(state["run_id"])
        except LLMBError as exc:
            return answer(shown, note=f"Cannot show the attention entropy: {exc}")
        step = view["step"]
        # Only the shown step changed: move the markers, keep the figure. Decided from what the
        # figure shows, not from the trigger: a newer call (the view, moved by a new snapshot)
        # can take the place of the call that was to draw that snapshot, or a new run.
        upto = steps[-1] if steps else None
        layers = drawn.get("rows") if isinstance(drawn, dict) else None
        if isinstance(layers, int) and 0 < layers <= 64 and drawn.get("run") == run_id and drawn.get("upto") == upto:
            moved = Patch()
            for row, marker in enumerate(step_markers(layers, step)):
                moved["layout"]["shapes"][row] = marker
            return answer(shown, figure=moved)
        try:
            histories = data.entropy(run_id)
            probe = len(data.snapshot(run_id, step if step in steps else steps[-1]).probe_ids) if steps else None
        except LLMBError as exc:
            return answer(shown, note=f"Cannot show the attention entropy: {exc}")
        if not histories:
            return answer(shown, figure={}, style={"display": "none"}, note=NONE_RECORDED, drawn=None)
        return answer(shown, figure=entropy_figure(histories, step, probe), style={}, note="",
                      drawn={"run": run_id, "upto": upto, "rows": rows(histories)})

    @app.callback(Output("layer", "value", allow_duplicate=True), Output("head", "value", allow_duplicate=True),
                  Input("attn-entropy", "clickData"), prevent_initial_call=True)
    def select_head(click):
        chosen = clicked_head(click)
        return chosen if chosen else (no_update, no_update)
