"""Compare two runs: a second run beside the shown one, at the shown step, in every panel that
shows a snapshot (samples, probability tower, star map, attention grid and detail), each at its
own nearest snapshot and labelled with the step it shows. The loss chart overlays it
(``runs.load_run``); the address carries it (``&compare=``)."""

from __future__ import annotations

from bisect import bisect_left

from dash import ALL, Input, Output, State, dcc, html, no_update

from llmb_mlflow.errors import LLMBError

from .. import checks
from ..answers import answer
from ..address import TABS, address, query
from ..figures import attention, probability_tower, star_map, text_progression
from ..figures.plotly_json import notice

PANELS = ("samples", "tower", "stars", "grid", "detail")


def nearest(steps: list[int], step: int) -> int:
    """The step of ``steps`` (ascending, not empty) nearest to ``step``; the earlier on a tie."""
    i = bisect_left(steps, step)
    if i == len(steps):
        return steps[-1]
    if i > 0 and step - steps[i - 1] <= steps[i] - step:
        return steps[i - 1]
    return steps[i]


def shapes_note(name: str, other_layers: int, other_heads: int, layers: int, heads: int,
                layer: int, head: int) -> str:
    """What the attention panels can compare when the two models differ in shape."""
    if (other_layers, other_heads) == (layers, heads):
        return ""
    if not other_layers or not layers:
        return f"{name if not other_layers else 'The shown run'} records no attention: there is nothing to compare."
    note = (f"{name} has {other_layers} layer(s) × {other_heads} head(s), the shown run "
            f"{layers} × {heads}")
    if layer >= other_layers or head >= other_heads:
        note += f"; layer {layer + 1}, head {head + 1} is not in it, so its nearest head is shown"
    return note + "."


def pair(a, b, panel: str) -> html.Div:
    """A panel's figure for the shown run and, while comparing, the compared run's beside it."""
    def side(name, child):
        label = html.Div(id={"type": "pair-label", "side": name, "panel": panel}, className="pair-label")
        return html.Div([label, child], className=f"side side-{name}")
    return html.Div([side("a", a), side("b", b)], className="pair")


def stores() -> list:
    # None until the address has been read once; then {"run": the compared run's id or None}.
    return [dcc.Store(id="compare")]


PICK = "choose a run to compare with"
CLOSE_MENU_JS = """
function (stored) {
    const menu = document.getElementById("compare-menu");
    if (menu) { menu.open = false; }
    return window.dash_clientside.no_update;
}"""


def menu() -> html.Details:
    return html.Details([
        html.Summary("Compare", id="compare-summary", title="show a second run beside this one"),
        html.Div([
            html.P("Show another run beside this one, at the same step, in every panel.",
                   className="menu-note"),
            dcc.Dropdown(id="compare-pick", placeholder=PICK,
                         className="compare-picker", optionHeight=40),
            html.Button("Stop comparing", id="compare-stop", className="ctl-btn"),
        ], className="menu-body compare-body"),
    ], id="compare-menu", className="menu")


def register(app, data) -> None:
    # Listed when the menu is opened or the shown run changes, not on every refresh: one search
    # across the experiments, however many a team's server holds.
    @app.callback(Output("compare-pick", "options"), Input("compare-summary", "n_clicks"), Input("run", "value"))
    def list_runs(_, shown):
        try:
            runs = data.comparable_runs()
        except LLMBError:
            return no_update
        return [{"label": f"{run.run_name} · {run.status.lower()} · {experiment}", "value": run.run_id}
                for experiment, run in runs if run.run_id != shown]

    # The store holds the compared run and the stops it has seen; the dropdown only picks one
    # (and is emptied again: a dropdown drops a value its options lack, as when the address
    # names a run not listed yet). A pick or a stop is read from the page's state, not from the
    # trigger: the address changes every second while a run is followed, and Dash drops a call
    # on its way when the same callback is asked again.
    @app.callback(Output("compare", "data"), Output("compare-pick", "value"),
                  Input("url", "search"), Input("compare-pick", "value"), Input("compare-stop", "n_clicks"),
                  State("compare", "data"))
    def choose(search, picked, stops, stored):
        stops = _clicks(stops)
        if stored is None:  # a shared address may name a run to compare with: read once it is known
            if search is None:
                return no_update, no_update
            return {"run": query(search).get("compare") or None, "stops": stops}, no_update
        seen = _clicks(stored.get("stops") if isinstance(stored, dict) else None)
        if stops > seen:
            return {"run": None, "stops": stops}, None
        if isinstance(picked, str) and picked:
            return {"run": picked, "stops": seen}, None
        return no_update, no_update

    # A pick or a stop closes the menu (the DOM's <details> state is not a Dash prop).
    app.clientside_callback(CLOSE_MENU_JS, Output("compare-menu", "className"), Input("compare", "data"),
                            prevent_initial_call=True)

    @app.callback(Output("page", "className"), Output("compare-summary", "children"),
                  Output("compare-stop", "disabled"), Output("compare-pick", "placeholder"),
                  Input("compare", "data"), State("page", "className"))
    def show_mode(stored, classes):
        """The page in compare mode or not; the menu closed on a pick or a stop, its picker
        naming the compared run."""
        other = compared(stored)
        try:
            name = data.run(data.check_run(other)).run_name if other else None
        except LLMBError:
            name = None  # the panels say why it cannot be compared
        classes = [c for c in checks.text(classes).split() if c != "comparing"] + (["comparing"] if name else [])
        return (" ".join(classes), (f"vs {name}" if name else "Compare"), not other,
                f"comparing with {name}; choose another" if name else PICK)

    sides = dict(
        samples=Output("samples-b", "children"), tower=Output("tower-b", "figure"), stars=Output("stars-b", "figure"),
        grid=Output("attention-grid-b", "figure"), detail=Output("attention-detail-b", "figure"),
        note=Output("compare-note", "children"),
        a_labels=Output({"type": "pair-label", "side": "a", "panel": ALL}, "children"),
        b_labels=Output({"type": "pair-label", "side": "b", "panel": ALL}, "children"),
        search=Output("url", "search", allow_duplicate=True),
        error=Output("run-error", "children", allow_duplicate=True))
    unlabelled = [""] * len(PANELS)

    @app.callback(output=sides,
                  inputs=[Input("compare", "data"), Input("view", "data"), Input("tabs", "value"),
                          Input("layer", "value"), Input("head", "value"), Input("temperature", "value")],
                  state=[State("run-state", "data"), State("steps", "data"), State("url", "search")],
                  prevent_initial_call=True)
    def compared_panels(stored, view, tab, layer, head, temperature, state, steps, shown_address):
        nothing = dict(note="", a_labels=unlabelled, b_labels=unlabelled)
        other = compared(stored)
        if not other or not state or not view:
            return answer(sides, **nothing)
        try:
            view, state, steps = checks.view(view), checks.run_state(state), checks.steps(steps)
            tab = checks.choice(tab, "tab", TABS)
            layer = checks.whole(layer or 0, "layer", 0, 63)
            head = checks.whole(head or 0, "head", 0, 63)
            temperature = checks.number(temperature or 1.0, "temperature", 0.1, 2.0)
            run_id = data.check_run(state["run_id"])
            other = data.check_run(other)
        except LLMBError as exc:
            return answer(sides, **nothing, error=f"Cannot compare: {exc}")
        step = view["step"]
        if step is None or step not in steps:
            return answer(sides, **nothing)
        # from the address itself, not the trigger: a pick's call may be dropped for a newer one
        search = address(run_id, tab, step, other) if query(shown_address).get("compare") != other else no_update
        try:
            name, other_name = data.run(run_id).run_name, data.run(other).run_name
            other_steps = data.snapshot_steps(other)
            if not other_steps:
                note = f"{other_name} has no snapshot yet."
                return answer(sides, note=note, a_labels=unlabelled, b_labels=[note] * len(PANELS),
                              search=search, error="")
            shown = nearest(other_steps, step)
            snap, other_snap = data.snapshot(run_id, step), data.snapshot(other, shown)
            samples = (data.samples(other, text_progression.listed_steps(other_steps, shown)) if tab == "watch" else [])
        except LLMBError as exc:
            return answer(sides, **nothing, error=f"Cannot compare with {checks.label(other)}: {exc}")
        a_label = f"{name} · step {step}"
        b_label = f"{other_name} · step {shown}" + ("" if shown == step else f" (nearest to {step})")
        other_layer, other_head = min(layer, other_snap.n_layer - 1), min(head, other_snap.n_head - 1)
        shown_b = dict(a_labels=[a_label] * len(PANELS), b_labels=[b_label] * len(PANELS), search=search, error="",
                       note=shapes_note(other_name, other_snap.n_layer, other_snap.n_head, snap.n_layer,
                                        snap.n_head, layer, head))
        if tab == "watch":
            return answer(sides, **shown_b,
                          samples=text_progression.text_progression(samples, shown, kind="sample-b", steps=other_steps),
                          tower=probability_tower.tower_figure(other_snap, temperature),
                          stars=(star_map.star_figure(other_snap) if len(other_snap.embedding)
                                 else notice(star_map.NO_EMBEDDING)))
        if tab == "attention" and not other_snap.n_layer:
            return answer(sides, **shown_b, grid=notice(attention.NO_ATTENTION),
                          detail=notice(attention.NO_ATTENTION))
        if tab == "attention":
            return answer(sides, **shown_b, grid=attention.grid_figure(other_snap, other_layer, other_head),
                          detail=attention.detail_figure(other_snap, other_layer, other_head))
        return answer(sides, **shown_b)

def _clicks(value) -> int:
    """A click count the page holds: a whole number of at least 0, else 0."""
    return value if isinstance(value, int) and value > 0 else 0


def compared(stored) -> str | None:
    run = stored.get("run") if isinstance(stored, dict) else None
    return run if isinstance(run, str) and run else None
