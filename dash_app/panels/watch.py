"""The Watch It Learn tab: the loss chart, what the model writes, the probability tower and
the character star map, all at the step the scrubber shows."""

from __future__ import annotations

from dash import Input, Output, Patch, State, dcc, html, no_update

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.run_layout import VAL_LOSS

from .. import checks
from ..answers import answer
from ..address import TABS, address
from . import compare, tour
from ..figures import loss, phase, probability_tower, sample_diff, star_map, text_progression
from ..figures.plotly_json import notice


def layout() -> html.Div:
    return html.Div([
        html.Section([
            tour.heading("How wrong it is", "loss"),
            dcc.Graph(id="loss-chart", figure=loss.loss_figure([], [], [], [], None), config={"displayModeBar": False},
                      className="loss-graph"),
            html.Div([
                html.Label("smoothing"),
                dcc.Slider(id="smoothing", min=0, max=0.99, step=0.01, value=0.6,
                           marks={0: "0", 0.6: "0.6", 0.99: "0.99"}, allow_direct_input=False),
                dcc.Checklist(id="log-scale", options=[{"label": " log scale", "value": "log"}], value=[]),
            ], className="chart-controls"),
            html.Div([html.H4(id="phase-title"), html.P(id="phase-text"), html.P(id="perplexity", className="perplexity")],
                     className="phase"),
        ], id="loss-panel", className="panel"),
        html.Section([tour.heading("What it writes", "samples"), sample_diff.controls(),
                      compare.pair(html.Div(id="samples", className="samples"),
                                   html.Div(id="samples-b", className="samples"), "samples")],
                     id="samples-panel", className="panel"),
        html.Section([
            tour.heading("What it expects next", "tower"),
            compare.pair(dcc.Graph(id="tower", config={"displayModeBar": False}),
                         dcc.Graph(id="tower-b", config={"displayModeBar": False}), "tower"),
            html.Div([html.Label("temperature"),
                      dcc.Slider(id="temperature", min=0.1, max=2.0, step=0.1, value=1.0,
                                 marks={0.1: "0.1", 1: "1", 2: "2"}, allow_direct_input=False)],
                     className="chart-controls"),
        ], id="tower-panel", className="panel"),
        html.Section([
            tour.heading(star_map.CHARACTERS_TITLE, "stars", title_id="stars-title"),
            compare.pair(dcc.Graph(id="stars", config={"displayModeBar": False}),
                         dcc.Graph(id="stars-b", config={"displayModeBar": False}), "stars"),
            dcc.Checklist(id="stars-fixed", value=[], className="chart-controls",
                          options=[{"label": " same axes at every step (to compare steps)", "value": "fixed"}]),
        ], id="stars-panel", className="panel"),
    ], className="watch-grid")


# The shown step's sample is scrolled into view inside the list (the page itself stays put).
SCROLL_TO_SHOWN_JS = """
function (children) {
    ["samples", "samples-b"].forEach(id => {  // newest first: the shown step's is on top
        const list = document.getElementById(id);
        if (list) { list.scrollTop = 0; }
    });
    return window.dash_clientside.no_update;
}"""


def register(app, data) -> None:
    app.clientside_callback(SCROLL_TO_SHOWN_JS, Output("samples", "title"), Input("samples", "children"),
                            prevent_initial_call=True)

    panels = dict(
        samples=Output("samples", "children"), tower=Output("tower", "figure"), stars=Output("stars", "figure"),
        stars_title=Output("stars-title", "children"),
        phase_title=Output("phase-title", "children"), phase_text=Output("phase-text", "children"),
        perplexity=Output("perplexity", "children"), step=Output("shown-step", "children"),
        marker=Output("loss-chart", "figure", allow_duplicate=True), search=Output("url", "search"),
        error=Output("run-error", "children", allow_duplicate=True))

    @app.callback(output=panels,
                  inputs=[Input("view", "data"), Input("temperature", "value"), Input("tabs", "value"),
                          Input("stars-fixed", "value"), Input("samples-diff", "value"),
                          Input("diff-against", "value")],
                  state=[State("run-state", "data"), State("steps", "data"), State("compare", "data")],
                  prevent_initial_call=True)
    def watch_panels(view, temperature, tab, stars_fixed, diff_on, diff_step, state, steps, compared):
        if not state or not view:
            return answer(panels)
        try:
            view, state, steps = checks.view(view), checks.run_state(state), checks.steps(steps)
            temperature = checks.number(temperature or 1.0, "temperature", 0.1, 2.0)
            tab = checks.choice(tab, "tab", TABS)
            run_id = data.check_run(state["run_id"])
        except LLMBError as exc:
            return answer(panels, error=f"Cannot show this view: {exc}")
        step = view["step"]
        if step is None or not steps or step not in steps:
            return answer(panels)
        try:
            snap = data.snapshot(run_id, step)
            val = data.value_at(run_id, VAL_LOSS, step)
            samples = data.samples(run_id, text_progression.listed_steps(steps, step)) if tab == "watch" else []
            old = sample_diff.against(steps, step, diff_step) if isinstance(diff_on, list) and "on" in diff_on else None
            older = data.samples(run_id, [old]) if tab == "watch" and old is not None else []
            fixed = tab == "watch" and isinstance(stars_fixed, list) and "fixed" in stars_fixed
            extent = data.embedding_range(run_id, steps) if fixed else None
        except LLMBError as exc:
            return answer(panels, error=f"Cannot show step {step}: {exc}")
        marker = Patch()
        marker["layout"]["shapes"][0] = loss.step_marker(step)
        moved = dict(step=f"step {step}", marker=marker, search=address(run_id, tab, step, compare.compared(compared)))
        if tab != "watch":
            return answer(panels, **moved)
        chars = snap.vocab.is_chars
        title, text = phase.phase(step, val) if chars else ("", "")  # its stages are a character model's
        return answer(panels, **moved, samples=_samples(samples, steps, step, older),
                      tower=probability_tower.tower_figure(snap, temperature),
                      stars=(star_map.star_figure(snap, extent) if len(snap.embedding)
                             else notice(star_map.NO_EMBEDDING)),
                      stars_title=star_map.title(snap),
                      phase_title=title, phase_text=text,
                      perplexity=loss.perplexity(val, "characters" if chars else "tokens"))

    @app.callback(Output("diff-against", "options"), Input("steps", "data"))
    def diff_steps(steps):
        try:
            return [{"label": f"step {s}", "value": s} for s in checks.steps(steps or [])]
        except LLMBError:
            return no_update


def _samples(samples: list[tuple[int, str]], steps: list[int], step: int, older: list[tuple[int, str]]) -> list:
    """The list of samples up to the shown step; with the diff on (``older``: the sample it is
    compared with), the shown one marks what changed since then."""
    listed = text_progression.text_progression(samples, step, steps=steps)
    texts = dict(samples)
    if not older or step not in texts:
        return listed
    (old, old_text), = older
    return [sample_diff.diff_entry(old, old_text, step, texts[step]), *listed[1:]]
