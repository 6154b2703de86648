"""The Dash app: layout and the callbacks that tie the panels to the scrubber and live data."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from dash import Dash, Input, Output, Patch, State, ctx, dcc, html, no_update

from llmb_mlflow import control
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.run_layout import DEFAULT_EXPERIMENT, TRAIN_LOSS, TRAINER_STATE_TAG, VAL_LOSS

from . import checks, http_guard
from .data import ViewerData
from .panels.controls import now_ms
from .panels import (
    attention, controls, loss, models, phase, probability_tower, scrubber, star_map, text_progression,
    training,
)

TABS = ("watch", "attention")
POLL_MS = 500  # with the trainer's 1 s flushes, new points show within ~1.5 s


def create_app(tracking_uri: str | None = None, run_id: str | None = None,
               experiment: str = DEFAULT_EXPERIMENT, url_base_pathname: str = "/",
               server=True, hosts: set[str] | None = None, **data_options) -> Dash:
    """The viewer; ``hosts``: the Host names it answers to (``http_guard.allowed_hosts``; None:
    any, for a server that checks them itself); ``data_options`` go to ViewerData
    (artifacts_destination, training_uri, read_only)."""
    data = ViewerData(tracking_uri, experiment, **data_options)
    app = Dash(__name__, title="LLMBreaker", url_base_pathname=url_base_pathname, server=server,
               suppress_callback_exceptions=False, update_title=None, use_async=False)
    http_guard.guard(app, hosts)
    app.layout = _layout(experiment, data.read_only)
    _register(app, data, run_id)
    controls.register(app, data)
    models.register(app, data)
    training.register(app, data)
    app.viewer_data = data
    return app


def _layout(experiment, read_only=False):
    # A read-only page keeps every component (callbacks name them) but hides those that write.
    return html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="run-state"),
        dcc.Store(id="switch-run"),  # a run just started from the viewer, to show at once
        dcc.Store(id="steps", data=[]),
        dcc.Store(id="view", data={"live": True, "playing": False, "step": None}),
        dcc.Interval(id="poll", interval=POLL_MS, disabled=True),
        dcc.Interval(id="runs-refresh", interval=5000),
        html.Header([
            html.H1("LLMBreaker"),
            dcc.Dropdown(id="experiment", clearable=False, className="experiment-picker",
                         value=experiment, options=[experiment]),
            dcc.Dropdown(id="run", placeholder="choose a run", clearable=False, className="run-picker"),
            html.Span(id="status", className="badge"),
            html.Span(id="live-indicator", className="live-indicator"),
            html.Span(id="progress", className="progress"),
            html.Span("view only", className="badge view-only", hidden=not read_only,
                      title="this viewer shows runs and models but changes nothing"),
            controls.layout(),
            training.layout(),
            models.layout(),
            html.Div(id="toast", className="toast", role="status"),
            html.Div(id="error", className="error"),  # the run list could not be read
            html.Div(id="run-error", className="error"),  # the shown run could not be read
        ]),
        dcc.Tabs(id="tabs", value="watch", children=[
            dcc.Tab(label="Watch It Learn", value="watch", children=_watch_tab()),
            dcc.Tab(label="Attention Cinema", value="attention", children=_attention_tab()),
        ]),
        scrubber.layout(),
    ], className="page read-only" if read_only else "page")


def _watch_tab():
    return html.Div([
        html.Div([
            html.Div([
                dcc.Graph(id="loss-chart", config={"displayModeBar": False}),
                html.Div([
                    html.Label("smoothing"),
                    dcc.Slider(id="smoothing", min=0, max=0.99, step=0.01, value=0.6,
                               marks={0: "0", 0.6: "0.6", 0.99: "0.99"}, allow_direct_input=False),
                    dcc.Checklist(id="log-scale", options=[{"label": " log scale", "value": "log"}], value=[]),
                    html.Span(id="perplexity", className="perplexity"),
                ], className="chart-controls"),
                html.Div([html.H3(id="phase-title"), html.P(id="phase-text")], className="phase"),
            ], className="left"),
            html.Div([html.H3("What it writes"), html.Div(id="samples", className="samples")],
                     className="right"),
        ], className="row"),
        html.Div([
            html.Div([
                dcc.Graph(id="tower", config={"displayModeBar": False}),
                html.Div([html.Label("temperature"),
                          dcc.Slider(id="temperature", min=0.1, max=2.0, step=0.1, value=1.0,
                                     marks={0.1: "0.1", 1: "1", 2: "2"}, allow_direct_input=False)],
                         className="chart-controls"),
            ], className="left"),
            html.Div([html.H3("Character star map"), dcc.Graph(id="stars")], className="right"),
        ], className="row"),
    ])


def _attention_tab():
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


def _query(search) -> dict:
    return {k: v[0] for k, v in parse_qs(checks.text(search).lstrip("?")).items()}


# A run started from a menu is shown at once; the menu it came from closes (the DOM's <details>
# state is not a Dash prop, so it is closed in the page).
CLOSE_MENUS_JS = """
function (run) {
    if (run) { document.querySelectorAll("details.menu[open]").forEach(m => { m.open = false; }); }
    return window.dash_clientside.no_update;
}"""


# An open menu can cover the header's message line: the open menu repeats the latest message
# (the one it most likely caused); a closed one forgets its last.
ECHO_MESSAGE_JS = """
function (message, className) {
    const shown = (className || "toast") + " menu-feedback";
    const echo = id => (document.getElementById(id) || {}).open ? [message, shown] : ["", "menu-feedback"];
    return [...echo("train-menu"), ...echo("models-menu")];
}"""


def _register(app: Dash, data: ViewerData, default_run: str | None) -> None:
    app.clientside_callback(CLOSE_MENUS_JS, Output("train-menu", "open"), Input("switch-run", "data"),
                            prevent_initial_call=True)
    app.clientside_callback(ECHO_MESSAGE_JS, Output("train-feedback", "children"),
                            Output("train-feedback", "className"), Output("models-feedback", "children"),
                            Output("models-feedback", "className"), Input("toast", "children"),
                            State("toast", "className"), prevent_initial_call=True)

    @app.callback(Output("experiment", "options"), Input("runs-refresh", "n_intervals"))
    def list_experiments(_):
        try:
            return data.experiments()
        except LLMBError:
            return no_update

    @app.callback(Output("run", "options"), Output("run", "value"), Output("error", "children"),
                  Input("runs-refresh", "n_intervals"), Input("url", "search"), Input("experiment", "value"),
                  Input("switch-run", "data"), State("run", "value"))
    def list_runs(_, search, experiment, switch_to, current):
        triggers = set(ctx.triggered_prop_ids.values())
        if triggers == {"url"} and current:
            return no_update, no_update, no_update
        try:
            experiment = checks.name(experiment, "experiment", optional=True)
        except LLMBError as exc:
            return no_update, no_update, f"Cannot list runs: {exc}"
        try:
            runs = data.runs(experiment)
        except LLMBError as exc:
            return no_update, no_update, f"Store unreachable: {exc}"
        current, switch_to = checks.text(current, 300), checks.text(switch_to, 300)
        options = [{"label": f"{r.run_name} · {r.status.lower()}", "value": r.run_id} for r in runs]
        newest = runs[0].run_id if runs else None
        if "switch-run" in triggers and switch_to:
            wanted = switch_to
        elif triggers == {"experiment"}:
            wanted = newest
        else:
            wanted = current or _query(search).get("run") or default_run or newest
        if wanted and wanted not in {o["value"] for o in options}:
            options.append({"label": wanted, "value": wanted})
        return options, (wanted if wanted != current else no_update), ""

    @app.callback(Output("loss-chart", "figure"), Output("run-state", "data"), Output("steps", "data"),
                  Output("poll", "disabled"), Output("layer", "options"), Output("head", "options"),
                  Output("layer", "value"), Output("head", "value"), Output("run-error", "children"),
                  Input("run", "value"), Input("smoothing", "value"), Input("log-scale", "value"),
                  Input("runs-refresh", "n_intervals"),
                  State("layer", "value"), State("head", "value"), State("run-state", "data"))
    def load_run(run_id, smoothing, log_scale, _refresh, layer, head, loaded):
        loaded_id = loaded.get("run_id") if isinstance(loaded, dict) else None
        if ctx.triggered_id == "runs-refresh" and (not run_id or loaded_id == run_id):
            return (no_update,) * 9  # the periodic refresh only retries a run that failed to load
        if not run_id:
            return loss.loss_figure([], [], [], [], None), None, [], True, [], [], 0, 0, ""
        try:
            smoothing = checks.number(smoothing, "smoothing", 0, 0.99)
            layer = checks.whole(layer or 0, "layer", 0, 63)
            head = checks.whole(head or 0, "head", 0, 63)
            run = data.run(run_id)
            chart = data.chart(run_id, run)
            steps = data.snapshot_steps(run_id, run)
        except LLMBError as exc:
            return (loss.loss_figure([], [], [], [], None), None, [], True, no_update, no_update,
                    no_update, no_update, f"Cannot show run {checks.label(run_id)}: {exc}")
        train_steps, train_values = chart["train"]
        state = _run_state(run, train_steps, train_values, chart["val"][0], smoothing)
        layers, heads = _count(run.params.get("n_layer")), _count(run.params.get("n_head"))
        figure = loss.loss_figure(train_steps, train_values, *chart["val"], None, smoothing,
                                  isinstance(log_scale, list) and "log" in log_scale)
        return (figure, state, steps, run.ended,
                [{"label": str(i + 1), "value": i} for i in range(layers)],
                [{"label": str(i + 1), "value": i} for i in range(heads)],
                min(layer, layers - 1), min(head, heads - 1), "")

    @app.callback(Output("loss-chart", "extendData"), Output("run-state", "data", allow_duplicate=True),
                  Output("steps", "data", allow_duplicate=True), Output("poll", "disabled", allow_duplicate=True),
                  Output("run-error", "children", allow_duplicate=True),
                  Input("poll", "n_intervals"), State("run-state", "data"), State("steps", "data"),
                  State("run-error", "children"), prevent_initial_call=True)
    def poll(_, state, steps, shown_error):
        if not state:
            return no_update, no_update, no_update, True, no_update
        try:
            state, steps = checks.run_state(state), checks.steps(steps)
        except LLMBError as exc:
            return no_update, no_update, no_update, True, f"Cannot follow the run: {exc}"
        try:
            run = data.run(state["run_id"])
            train_steps, train_values = data.new_points(state["run_id"], TRAIN_LOSS, state["last_train"], run)
            val_steps, val_values = data.new_points(state["run_id"], VAL_LOSS, state["last_val"], run)
            new_steps = data.snapshot_steps(state["run_id"], run) if val_steps or run.ended else steps
        except LLMBError as exc:  # keep polling: the store may come back
            return no_update, no_update, no_update, no_update, f"Store unreachable, retrying: {exc}"
        extend = no_update
        if train_steps or val_steps:
            smoothed = loss.smooth(train_values, state["smoothing"], state["ema"]) if train_steps else []
            extend = [{"x": [train_steps, train_steps, val_steps],
                       "y": [train_values, list(smoothed), val_values]}, [loss.RAW, loss.SMOOTH, loss.VAL]]
            state = {**state, "last_train": train_steps[-1] if train_steps else state["last_train"],
                     "last_val": val_steps[-1] if val_steps else state["last_val"],
                     "ema": float(smoothed[-1]) if train_steps else state["ema"]}
        state = {**state, "status": run.status, "last_step": run.last_step, "updated": now_ms(),
                 "trainer_state": run.tags.get(TRAINER_STATE_TAG),
                 "silence": control.silence(run.tags, run.status, run.start_time)}
        return (extend, state, (new_steps if new_steps != steps else no_update), run.ended,
                "" if shown_error else no_update)

    @app.callback(Output("view", "data"), Output("scrubber", "value"), Output("scrubber", "max"),
                  Output("scrubber", "marks"), Output("play-tick", "disabled"), Output("play", "children"),
                  Output("live", "className"),
                  Input("steps", "data"), Input("scrubber", "value"), Input("live", "n_clicks"),
                  Input("step-back", "n_clicks"), Input("step-forward", "n_clicks"),
                  Input("play", "n_clicks"), Input("play-tick", "n_intervals"),
                  Input("loss-chart", "clickData"), Input("url", "search"), Input("switch-run", "data"),
                  State("view", "data"), State("speed", "value"))
    def scrub(steps, slider, _live, _back, _forward, _play, _tick, click, search, _switch, view, speed):
        try:
            steps, view = checks.steps(steps or []), checks.view(view)
            speed = checks.choice(speed or 1, "speed", scrubber.SPEEDS)
        except LLMBError:
            return (no_update,) * 7
        triggers = set(ctx.triggered_prop_ids.values())
        trigger = ctx.triggered_id
        if "url" in triggers:  # a shared link pins its step, once; our own URL updates don't
            wanted = checks.step_in_address(_query(search).get("step", ""))
            if view.get("step") is None and wanted is not None:
                view = {"live": False, "playing": False, "step": wanted}
            elif triggers == {"url"}:
                return (no_update,) * 7
            trigger = "steps"
        if trigger == "loss-chart":
            event, value = "click", _clicked_step(click)
            if value is None:
                return (no_update,) * 7
        elif trigger == "play":
            event, value = ("pause" if view.get("playing") else "play"), None
        else:
            event = {"steps": "steps", "scrubber": "slider", "live": "live", "switch-run": "live",
                     "step-back": "back",
                     "step-forward": "forward", "play-tick": "tick"}.get(trigger, "steps")
            value = slider
            if event == "slider" and (isinstance(slider, bool) or not isinstance(slider, int)):
                return (no_update,) * 7
        new = scrubber.next_view(event, view, steps, value, speed or 1)
        index = scrubber.nearest_index(steps, new["step"]) if steps and new["step"] is not None else 0
        return (new, index, max(len(steps) - 1, 0), scrubber.marks(steps), not new["playing"],
                "❚❚ Pause" if new["playing"] else "▶ Play", "live-btn on" if new["live"] else "live-btn")

    @app.callback(Output("samples", "children"), Output("tower", "figure"), Output("stars", "figure"),
                  Output("phase-title", "children"), Output("phase-text", "children"),
                  Output("perplexity", "children"), Output("shown-step", "children"),
                  Output("loss-chart", "figure", allow_duplicate=True), Output("url", "search"),
                  Output("run-error", "children", allow_duplicate=True),
                  Input("view", "data"), Input("temperature", "value"), Input("tabs", "value"),
                  State("run-state", "data"), State("steps", "data"), prevent_initial_call=True)
    def watch_panels(view, temperature, tab, state, steps):
        if not state or not view:
            return (no_update,) * 10
        try:
            view, state, steps = checks.view(view), checks.run_state(state), checks.steps(steps)
            temperature = checks.number(temperature or 1.0, "temperature", 0.1, 2.0)
            tab = checks.choice(tab, "tab", TABS)
            run_id = data.check_run(state["run_id"])
        except LLMBError as exc:
            return (no_update,) * 9 + (f"Cannot show this view: {exc}",)
        step = view["step"]
        if step is None or not steps or step not in steps:
            return (no_update,) * 10
        try:
            snap = data.snapshot(run_id, step)
            val = data.value_at(run_id, VAL_LOSS, step)
            samples = data.samples(run_id, [s for s in steps if s <= step]) if tab == "watch" else []
            extent = data.embedding_range(run_id, steps) if tab == "watch" else 1.0
        except LLMBError as exc:
            return (no_update,) * 9 + (f"Cannot show step {step}: {exc}",)
        title, text = phase.phase(step, val)
        marker = Patch()
        marker["layout"]["shapes"][0] = loss.step_marker(step)
        search = "?" + urlencode({"run": run_id, "tab": tab, "step": step})
        if tab != "watch":
            return (no_update,) * 6 + (f"step {step}", marker, search, no_update)
        return (text_progression.text_progression(samples, step),
                probability_tower.tower_figure(snap, temperature),
                star_map.star_figure(snap, extent),
                title, text, loss.perplexity(val), f"step {step}", marker, search, no_update)

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

    @app.callback(Output("tabs", "value"), Input("url", "search"), State("tabs", "value"))
    def tab_from_url(search, current):
        wanted = _query(search).get("tab")
        return wanted if wanted in TABS and wanted != current else no_update


def _count(param) -> int:
    """A run's layer or head count as its params say (anyone may write them): 1 to 64."""
    return int(param) if isinstance(param, str) and param.isascii() and param.isdigit() \
        and len(param) <= 2 and 1 <= int(param) <= 64 else 1


def _clicked_step(click) -> int | None:
    """The step of a click on the loss chart, as the page sent it."""
    try:
        x = click["points"][0]["x"]
    except (TypeError, KeyError, IndexError):
        return None
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 2**62 else None


def _run_state(run, train_steps, train_values, val_steps, smoothing) -> dict:
    ema = float(loss.smooth(train_values, smoothing)[-1]) if train_values else None
    return {"run_id": run.run_id, "status": run.status, "max_iters": run.max_iters,
            "start_time": run.start_time, "first_step": max(train_steps[0] - 1, 0) if train_steps else 0,
            "trainer_state": run.tags.get(TRAINER_STATE_TAG),
            "silence": control.silence(run.tags, run.status, run.start_time),
            "updated": now_ms(),
            "last_step": run.last_step, "last_train": train_steps[-1] if train_steps else None,
            "last_val": val_steps[-1] if val_steps else None, "ema": ema, "smoothing": smoothing}
