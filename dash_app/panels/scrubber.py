"""The scrubber shared by both tabs: which step is shown, and whether it follows live data.

``next_view`` is the pure state machine; the Dash callback only feeds it events."""

from __future__ import annotations

from bisect import bisect_left

from dash import Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.run_layout import RUNNING

from .. import checks
from ..address import query
from ..icons import icon, labelled

SPEEDS = (1, 2, 5, 10)


def nearest_index(steps: list[int], step: int) -> int:
    i = bisect_left(steps, step)
    if i == len(steps):
        return len(steps) - 1
    if i > 0 and step - steps[i - 1] <= steps[i] - step:
        return i - 1
    return i


def next_view(event: str, view: dict, steps: list[int], value: int | None = None,
              speed: int = 1) -> dict:
    """The view after ``event``.

    view = {"live": bool, "playing": bool, "step": int | None}. Events: "steps" (new snapshot
    list), "slider" (the user moved it to index ``value``), "live", "back", "forward",
    "tick" (playback), "play", "pause", "click" (a chart click at step ``value``)."""
    view = {"live": True, "playing": False, "step": None, **(view or {})}
    if not steps:
        return view
    last = len(steps) - 1
    current = nearest_index(steps, view["step"]) if view["step"] is not None else last
    if event == "steps":
        index = last if view["live"] else current
        return {**view, "step": steps[index]}
    if event == "live":
        return {"live": True, "playing": False, "step": steps[last]}
    if event == "slider":
        index = min(max(int(value), 0), last)
        return {"live": False, "playing": view["playing"], "step": steps[index]}
    if event in ("back", "forward"):
        index = min(max(current + (1 if event == "forward" else -1), 0), last)
        return {"live": False, "playing": False, "step": steps[index]}
    if event == "click":
        return {"live": False, "playing": False, "step": steps[nearest_index(steps, int(value))]}
    if event == "play":
        start = 0 if current == last else current
        return {"live": False, "playing": True, "step": steps[start]}
    if event == "pause":
        return {**view, "playing": False}
    if event == "tick" and view["playing"]:
        index = min(current + speed, last)
        return {**view, "step": steps[index], "playing": index < last}
    return view


def follow_words(live: bool, running: bool) -> tuple[str, str]:
    """The Live button's words and the note beside the shown step: whether the view follows the
    training (the header says what the training itself does)."""
    if running:
        return ("Following the training", "") if live else ("Follow the training", "pinned")
    return ("Showing the last step", "") if live else ("Go to the last step", "pinned")


def marks(steps: list[int], count: int = 8) -> dict:
    if not steps:
        return {}
    every = max(1, len(steps) // count)
    chosen = set(range(0, len(steps), every)) | {len(steps) - 1}
    return {i: str(steps[i]) for i in sorted(chosen)}


def layout() -> html.Div:
    return html.Div([
        dcc.Store(id="view", data={"live": True, "playing": False, "step": None}),
        html.Button(icon("back"), id="step-back", title="previous snapshot (←)", className="scrub-btn"),
        html.Button(labelled("play", "Play"), id="play", className="scrub-btn play-btn"),
        dcc.Dropdown(id="speed", options=[{"label": f"{s}×", "value": s} for s in SPEEDS],
                     value=1, clearable=False, className="speed"),
        html.Button(icon("forward"), id="step-forward", title="next snapshot (→)", className="scrub-btn"),
        html.Div(dcc.Slider(id="scrubber", min=0, max=0, step=1, value=0, marks={},
                            updatemode="mouseup", allow_direct_input=False), className="slider"),
        html.Button(labelled("dot", "Following the training"), id="live", className="live-btn on",
                    title="keep showing the newest snapshot as the training goes on"),
        html.Span(id="shown-step", className="shown-step"),
        html.Span(id="view-mode", className="view-mode"),
        dcc.Interval(id="play-tick", interval=700, disabled=True),
    ], className="scrubber", id="scrubber-bar")


def register(app) -> None:
    @app.callback(Output("view", "data"), Output("scrubber", "value"), Output("scrubber", "max"),
                  Output("scrubber", "marks"), Output("play-tick", "disabled"), Output("play", "children"),
                  Input("steps", "data"), Input("scrubber", "value"), Input("live", "n_clicks"),
                  Input("step-back", "n_clicks"), Input("step-forward", "n_clicks"),
                  Input("play", "n_clicks"), Input("play-tick", "n_intervals"),
                  Input("loss-chart", "clickData"), Input("url", "search"), Input("switch-run", "data"),
                  State("view", "data"), State("speed", "value"))
    def scrub(steps, slider, _live, _back, _forward, _play, _tick, click, search, _switch, view, speed):
        try:
            steps, view = checks.steps(steps or []), checks.view(view)
            speed = checks.choice(speed or 1, "speed", SPEEDS)
        except LLMBError:
            return (no_update,) * 6
        triggers = set(ctx.triggered_prop_ids.values())
        trigger = ctx.triggered_id
        if "url" in triggers:  # a shared link pins its step, once; our own URL updates don't
            wanted = checks.step_in_address(query(search).get("step", ""))
            if view.get("step") is None and wanted is not None:
                view = {"live": False, "playing": False, "step": wanted}
            elif triggers == {"url"}:
                return (no_update,) * 6
            trigger = "steps"
        if trigger == "loss-chart":
            event, value = "click", _clicked_step(click)
            if value is None:
                return (no_update,) * 6
        elif trigger == "play":
            event, value = ("pause" if view.get("playing") else "play"), None
        else:
            event = {"steps": "steps", "scrubber": "slider", "live": "live", "switch-run": "live",
                     "step-back": "back",
                     "step-forward": "forward", "play-tick": "tick"}.get(trigger, "steps")
            value = slider
            if event == "slider" and (isinstance(slider, bool) or not isinstance(slider, int)):
                return (no_update,) * 6
        new = next_view(event, view, steps, value, speed or 1)
        index = nearest_index(steps, new["step"]) if steps and new["step"] is not None else 0
        return (new, index, max(len(steps) - 1, 0), marks(steps), not new["playing"],
                labelled("pause", "Pause") if new["playing"] else labelled("play", "Play"))

    @app.callback(Output("live", "children"), Output("live", "className"), Output("view-mode", "children"),
                  Input("view", "data"), Input("run-state", "data"))
    def show_following(view, state):
        try:
            live = checks.view(view).get("live", True)
            run = checks.run_state(state) if state else None
            running = bool(run) and run["status"] == RUNNING and not run.get("silence")
        except LLMBError:
            return no_update, no_update, no_update
        words, pinned = follow_words(live, running)
        return labelled("dot", words), "live-btn on" if live else "live-btn", pinned


def _clicked_step(click) -> int | None:
    """The step of a click on the loss chart, as the page sent it."""
    try:
        x = click["points"][0]["x"]
    except (TypeError, KeyError, IndexError):
        return None
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 2**62 else None
