"""Trainings the page starts (New training, Load): started at once in processes of their own,
then followed until they have their run, which the viewer switches to. No server thread waits
for a training to start, and any worker of a server can answer the page's polls."""

from __future__ import annotations

from dash import Input, Output, dcc, html, no_update

from llmb_mlflow.launch import launcher
from llmb_mlflow.errors import LLMBError

from .. import checks

POLL_MS = 500


def layout() -> html.Div:
    return html.Div([dcc.Store(id="pending-launch"),
                     dcc.Interval(id="launch-poll", interval=POLL_MS, disabled=True)])


def pending(started: launcher.Started, done: str, failed: str) -> dict:
    """What the page keeps of a started training: its id, and what to say when it has its run
    (``{run}`` stands for the run) or did not start (followed by why)."""
    return {"id": started.id, "done": done, "failed": failed}


def register(app, data) -> None:
    @app.callback(Output("toast", "children", allow_duplicate=True),
                  Output("toast", "className", allow_duplicate=True),
                  Output("switch-run", "data", allow_duplicate=True), Output("launch-poll", "disabled"),
                  Output("pending-launch", "data", allow_duplicate=True),
                  Input("launch-poll", "n_intervals"), Input("pending-launch", "data"),
                  prevent_initial_call=True)
    def follow(_, waiting):
        if not waiting:
            return no_update, no_update, no_update, True, no_update
        try:
            waiting = checks.pending_launch(waiting)
        except LLMBError as exc:
            return f"Could not follow the training: {exc}", "toast error", no_update, True, None
        try:
            run_id = data.follow_launch(waiting["id"])
        except LLMBError as exc:
            return f"{waiting['failed']}: {exc}", "toast error", no_update, True, None
        if run_id is None:
            return no_update, no_update, no_update, False, no_update  # still starting: poll on
        return waiting["done"].replace("{run}", run_id[:8]), "toast ok", run_id, True, None
