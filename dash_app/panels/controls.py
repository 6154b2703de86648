"""The header's training controls: what the shown training is doing, and Pause, Resume, Step,
Stop and Mark failed, sent through the tracking store like ``llmb runs pause|...``."""

from __future__ import annotations

import time

from dash import Input, Output, State, ctx, html, no_update

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.run_layout import ENDED, RUNNING, TRAINER_PAUSED

from .. import checks
from ..access import EDIT
from ..icons import labelled

# (command, icon, words, tooltip)
CONTROLS = [("pause", "pause", "Pause", "pause the training (the run stays RUNNING)"),
            ("resume", "play", "Resume", "resume a paused training"),
            ("step", "step", "Step", "let a paused training take one step"),
            ("stop", "stop", "Stop", "stop the training after its current step (it checkpoints first)"),
            ("fail", "fail", "Mark failed", "end this crashed training's run as FAILED (everything logged stays)")]
COMMANDS = [command for command, *_ in CONTROLS]
STATUS_CLASS = {status: status.lower() for status in (RUNNING, *ENDED)}


def layout() -> html.Div:
    return html.Div([html.Button(labelled(shape, words), id=f"ctl-{command}", className="ctl-btn",
                                 disabled=True, title=title)
                     for command, shape, words, title in CONTROLS], className="controls writes")


ETA_AFTER_MS = 5000


def now_ms() -> int:
    return int(time.time() * 1000)


def eta(state: dict) -> str:
    """", about N min left" from the pace this page has seen the training keep, once it has
    watched it for ETA_AFTER_MS (a run's start, its imports and first evaluation, is no pace)."""
    if state.get("pace_step") is None or state.get("pace_time") is None:
        return ""
    done = state["last_step"] - state["pace_step"]
    elapsed = (state.get("updated") or now_ms()) - state["pace_time"]
    remaining = (state.get("max_iters") or 0) - state["last_step"]
    if done <= 0 or elapsed < ETA_AFTER_MS or remaining <= 0:
        return ""
    seconds = elapsed / 1000 / done * remaining
    return f", about {seconds / 60:.0f} min left" if seconds >= 90 else f", about {seconds:.0f} s left"


def header(state: dict | None, refusal: str | None = None) -> tuple:
    """(the training's status in words, its class, progress, *each control's disabled flag,
    *each control's tooltip); ``refusal``: why the user may not control this run, if so."""
    titles = tuple(refusal or title for *_, title in CONTROLS)
    if not state:
        return ("", "badge", "") + (True,) * len(CONTROLS) + titles
    status = state["status"]
    silence = state.get("silence")
    running = status == RUNNING and not silence
    paused = running and state.get("trainer_state") == TRAINER_PAUSED
    progress = f"step {state['last_step']}" + (f" / {state['max_iters']}" if state.get("max_iters") else "")
    if running and not paused:
        progress += eta(state)
    enabled = {"pause": running and not paused, "resume": paused, "step": paused, "stop": running,
               "fail": bool(silence) and not refusal}
    enabled = {command: on and not refusal for command, on in enabled.items()}
    label = f"{status.lower()} · {silence}" if silence else (
        f"{status.lower()} · paused" if paused else status.lower())
    kind = "stale" if silence else "paused" if paused else STATUS_CLASS.get(status, "")
    return (label, f"badge {kind}", progress,
            *[not enabled[command] for command in COMMANDS], *titles)


def register(app, data) -> None:
    @app.callback(Output("status", "children"), Output("status", "className"),
                  Output("progress", "children"),
                  *[Output(f"ctl-{command}", "disabled") for command in COMMANDS],
                  *[Output(f"ctl-{command}", "title") for command in COMMANDS],
                  Input("run-state", "data"))
    def show_state(state):
        try:
            state = checks.run_state(state) if state else None
            return header(state, state and data.refusal(EDIT, "control this run", run_id=state["run_id"]))
        except LLMBError:  # not a state this server wrote, or a run that cannot be read: show none
            return header(None)

    @app.callback(Output("toast", "children"), Output("toast", "className"),
                  *[Input(f"ctl-{command}", "n_clicks") for command in COMMANDS],
                  State("run-state", "data"), prevent_initial_call=True)
    def control_training(*args):
        state = args[-1]
        which = ctx.triggered_id
        command = which.removeprefix("ctl-") if isinstance(which, str) else None
        if not state or command not in COMMANDS:
            return no_update, no_update
        verb = "mark it failed" if command == "fail" else command
        try:
            run_id = checks.run_state(state)["run_id"]
            if command == "fail":
                data.mark_failed(run_id)
                return "Marked the run FAILED; everything it logged is kept.", "toast ok"
            data.control(run_id, command)
        except LLMBError as exc:
            return f"Could not {verb}: {exc}", "toast error"
        return f"Asked the training to {command}.", "toast ok"
