"""The scrubber shared by every tab: which step is shown, and whether it follows the training.

Its state machine runs in the page (``assets/scrubber.js``), so a click is applied at once and
in order, never superseded by a poll's new snapshot list."""

from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, dcc, html, no_update

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.run_layout import RUNNING

from .. import checks
from ..icons import icon, labelled

SPEEDS = (1, 2, 5, 10)


def follow_words(live: bool, running: bool, at_end: bool = False) -> tuple[str, str]:
    """The Live button's words and the note beside the shown step: whether the view follows the
    training (the header says what the training itself does). ``at_end``: the shown step is the
    run's last snapshot (of an ended run, nothing is left to go to)."""
    if running:
        return ("Following the training", "") if live else ("Follow the training", "pinned")
    return ("Showing the last step", "") if live or at_end else ("Go to the last step", "pinned")


def layout() -> html.Div:
    return html.Div([
        dcc.Store(id="view", data={"live": True, "playing": False, "step": None}),
        dcc.Store(id="follow-due"),  # set by assets/scrubber.js when a held-back snapshot is due
        html.Button(icon("back"), id="step-back", title="previous snapshot (←)", className="scrub-btn"),
        html.Button(labelled("play", "Play"), id="play", className="scrub-btn play-btn"),
        dcc.Dropdown(id="speed", options=[{"label": f"{s}×", "value": s} for s in SPEEDS],
                     value=1, clearable=False, className="speed"),
        html.Button(icon("forward"), id="step-forward", title="next snapshot (→)", className="scrub-btn"),
        html.Div(dcc.Slider(id="scrubber", min=0, max=0, step=1, value=0, marks=None,
                            updatemode="mouseup", allow_direct_input=False), className="slider"),
        html.Button(labelled("dot", "Following the training"), id="live", className="live-btn on",
                    title="keep showing the newest snapshot as the training goes on"),
        html.Span(id="shown-step", className="shown-step"),
        html.Span(id="view-mode", className="view-mode"),
        dcc.Interval(id="play-tick", interval=700, disabled=True),
    ], className="scrubber", id="scrubber-bar")


def register(app) -> None:
    app.clientside_callback(
        ClientsideFunction("scrubber", "scrub"),  # assets/scrubber.js
        Output("view", "data"), Output("scrubber", "value"), Output("scrubber", "max"),
        Output("scrubber", "marks"), Output("play-tick", "disabled"), Output("play", "children"),
        Input("steps", "data"), Input("follow-due", "data"), Input("scrubber", "value"), Input("live", "n_clicks"),
        Input("step-back", "n_clicks"), Input("step-forward", "n_clicks"),
        Input("play", "n_clicks"), Input("play-tick", "n_intervals"),
        Input("loss-chart", "clickData"), Input("attn-entropy", "clickData"), Input("switch-run", "data"),
        State("view", "data"), State("speed", "value"), State("url", "search"))

    @app.callback(Output("live", "children"), Output("live", "className"), Output("view-mode", "children"),
                  Input("view", "data"), Input("run-state", "data"), State("steps", "data"))
    def show_following(view, state, steps):
        try:
            view = checks.view(view)
            live = view.get("live", True)
            run = checks.run_state(state) if state else None
            running = bool(run) and run["status"] == RUNNING and not run.get("silence")
            steps = checks.steps(steps or [])
        except LLMBError:
            return no_update, no_update, no_update
        at_end = bool(steps) and view.get("step") == steps[-1]
        words, pinned = follow_words(live, running, at_end)
        return labelled("dot", words), "live-btn on" if live or (at_end and not running) else "live-btn", pinned

