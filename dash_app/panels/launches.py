"""Trainings the page starts (New training, Load): started at once in processes of their own,
then followed until they have their run, which the viewer switches to. No server thread waits
for a training to start, and any worker of a server can answer the page's polls."""

from __future__ import annotations

from dash import Input, Output, dcc, html

from llmb_mlflow.launch import launcher
from llmb_mlflow.errors import LLMBError

from .. import checks
from ..answers import answer, toast

POLL_MS = 500


def layout() -> html.Div:
    return html.Div([dcc.Store(id="pending-launch"),
                     dcc.Interval(id="launch-poll", interval=POLL_MS, disabled=True)])


def pending(started: launcher.Started, done: str, failed: str) -> dict:
    """What the page keeps of a started training: its id, and what to say when it has its run
    (``{run}`` stands for the run) or did not start (followed by why)."""
    return {"id": started.id, "done": done, "failed": failed}


def register(app, data) -> None:
    followed = dict(switch=Output("switch-run", "data", allow_duplicate=True), off=Output("launch-poll", "disabled"),
                    waiting=Output("pending-launch", "data", allow_duplicate=True))

    @app.callback(output=followed, inputs=[Input("launch-poll", "n_intervals"), Input("pending-launch", "data")],
                  prevent_initial_call=True)
    def follow(_, waiting):
        if not waiting:
            return answer(followed, off=True)
        try:
            waiting = checks.pending_launch(waiting)
        except LLMBError as exc:
            toast(f"Could not follow the training: {exc}", ok=False)
            return answer(followed, off=True, waiting=None)
        try:
            run_id = data.follow_launch(waiting["id"])
        except LLMBError as exc:
            toast(f"{waiting['failed']}: {exc}", ok=False)
            return answer(followed, off=True, waiting=None)
        if run_id is None:
            return answer(followed, off=False)  # still starting: poll on
        toast(waiting["done"].replace("{run}", run_id[:8]))
        return answer(followed, switch=run_id, off=True, waiting=None)
