"""The Style Transfer tab: paste a text, train a small model on it, and watch how well its
samples match the text's style (``llmb_mlflow/training/style.py``), at the step the scrubber shows."""

from __future__ import annotations

from dash import Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow.training import style
from llmb_mlflow.training.config import PRESETS
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.run_layout import SOURCE_STYLE_PARAMS, STYLE_MATCH
from llmb_mlflow.launch.uploads import MAX_CORPUS_BYTES, forget_upload

from .. import checks
from ..answers import answer
from . import launches, tour
from ..figures import loss
from .training import checked_form, corpus_path, train_command

MIN_WORDS = 50
STARTING = "Training a small model on your text..."
DEFAULT_STEPS, DEFAULT_EVERY = 1500, 50  # the original app's
PRESET = "small"
ROWS = [("word_length", "average word length (letters)", "{:.2f}"),
        ("sentence_length", "average sentence length (words)", "{:.1f}"),
        ("punctuation", "punctuation per character", "{:.1%}"),
        ("capitals", "capitals per letter", "{:.1%}")]


def pasted(text) -> bytes:
    """The pasted text as a corpus file's bytes; too short, too long or not text is a one-line error."""
    if not isinstance(text, str) or not text.strip():
        raise LLMBError("paste a text to imitate first")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LLMBError(f"the text holds a character that is not text (at position {exc.start}); remove it") from None
    if len(raw) > MAX_CORPUS_BYTES:
        raise LLMBError(f"the text is {len(raw) / 2**20:.1f} MB; the limit is {MAX_CORPUS_BYTES // 2**20} MB")
    words = len(style.WORD.findall(text))
    if words < MIN_WORDS:
        raise LLMBError(f"the text has {words} word{'s' * (words != 1)}; paste at least {MIN_WORDS}")
    return raw


def context_for(raw: bytes) -> int:
    """The model's context for a text this long: the preset's, or less so that the tenth of the
    text kept for validation still holds a whole context."""
    return max(min(PRESETS[PRESET]["block_size"], len(raw.decode("utf-8")) // 10 - 2), 8)


def style_table(source: dict[str, float] | None, sample: str | None, step: int | None) -> html.Table:
    """The source's statistics beside those of the sample at the shown step."""
    mine = style.statistics(sample) if sample is not None else None
    head = html.Tr([html.Th(""), html.Th("training text"), html.Th(f"sample at step {step}" if step is not None else "sample")])
    rows = [html.Tr([html.Td(label),
                     html.Td(fmt.format(source[name]) if source and name in source else "-"),
                     html.Td(fmt.format(getattr(mine, name)) if mine else "-")]) for name, label, fmt in ROWS]
    return html.Table([head, *rows], className="style-table")


def match_figure(steps: list[int], values: list[float], shown: int | None) -> dict:
    return {
        "data": [{"type": "scatter", "x": steps, "y": values, "mode": "lines+markers", "name": "style match",
                  "line": {"color": "#6f42c1"}, "hovertemplate": "step %{x}: %{y:.0f}%<extra></extra>"}],
        "layout": {"height": 240, "margin": {"l": 50, "r": 10, "t": 10, "b": 40}, "uirevision": "style",
                   "xaxis": {"title": {"text": "step"}}, "yaxis": {"title": {"text": "style match %"}, "range": [0, 100]},
                   "shapes": [loss.step_marker(shown)]},
    }


def layout() -> html.Div:
    return html.Div([
        html.Section([
            tour.heading("Train on your own text", "style"),
            dcc.Textarea(id="st-text", placeholder=f"Paste at least {MIN_WORDS} words of any text here: "
                                                   "poems, a diary, code, song lyrics...", className="st-text"),
            html.Div([
                html.Label("steps", htmlFor="st-steps"),
                dcc.Input(id="st-steps", type="number", placeholder=str(DEFAULT_STEPS), className="num"),
                html.Label("snapshot every", htmlFor="st-every"),
                dcc.Input(id="st-every", type="number", placeholder=str(DEFAULT_EVERY), className="num"),
                html.Button("Train on this text", id="st-start", className="ctl-btn"),
                dcc.Upload(html.Span(["or ", html.A("put a .txt file in the box")]), id="st-upload",
                           accept=".txt,text/plain", className="upload"),
            ], className="chart-controls writes"),
            html.Div(id="st-feedback", className="menu-feedback", role="status"),
            dcc.Store(id="st-started-from"),  # the run shown when a training was started here
        ], id="style-source-panel", className="panel"),
        html.Section([
            html.H3("How well it imitates the training text"),
            html.Div(id="st-match", className="st-match"),
            html.Div(id="st-table"),
            dcc.Graph(id="st-chart", config={"displayModeBar": False}),
        ], id="style-panel", className="panel"),
    ], className="watch-grid")


# A chosen file's text goes into the box (read in the page: nothing is sent until Train).
FILE_TO_BOX_JS = """
function (contents) {
    if (!contents) { return window.dash_clientside.no_update; }
    const bytes = Uint8Array.from(atob(contents.split(",")[1] || ""), c => c.charCodeAt(0));
    return new TextDecoder("utf-8").decode(bytes);
}"""


def register(app, data) -> None:
    app.clientside_callback(FILE_TO_BOX_JS, Output("st-text", "value"), Input("st-upload", "contents"),
                            prevent_initial_call=True)

    @app.callback(Output("st-feedback", "children"), Output("pending-launch", "data", allow_duplicate=True),
                  Output("st-started-from", "data"),
                  Input("st-start", "n_clicks"), State("st-text", "value"), State("st-steps", "value"),
                  State("st-every", "value"), State("experiment", "value"), State("run-state", "data"),
                  prevent_initial_call=True)
    def start(_, text, steps, every, experiment, shown):
        if ctx.triggered_id != "st-start":
            return no_update, no_update, no_update
        try:  # everything is checked before the text is kept: a refused request writes nothing
            data.check_writable()
            raw = pasted(text)
            experiment = data.experiment_to_train_in(experiment or data.experiment)
            form = checked_form(PRESET, {"max_iters": steps if steps not in (None, "") else DEFAULT_STEPS,
                                         "eval_interval": every if every not in (None, "") else DEFAULT_EVERY,
                                         "block_size": context_for(raw)},
                                f"style: {' '.join(style.WORD.findall(text)[:4])}")
            upload = data.keep_upload("pasted-text.txt", raw, experiment)
            try:
                started = data.start_training([*train_command(corpus_path(upload.id), form, experiment),
                                               "--style-transfer"])
            except LLMBError:
                forget_upload(upload)
                raise
        except LLMBError as exc:
            return f"Could not start: {exc}", no_update, no_update
        return (STARTING, launches.pending(started, "Started run {run}: it imitates your text.", "Could not start"),
                {"run": shown.get("run_id") if isinstance(shown, dict) else None})

    styled = dict(match=Output("st-match", "children"), table=Output("st-table", "children"),
                  chart=Output("st-chart", "figure"), said=Output("st-feedback", "children", allow_duplicate=True))

    @app.callback(output=styled, inputs=[Input("view", "data"), Input("tabs", "value")],
                  state=[State("run-state", "data"), State("steps", "data"), State("st-feedback", "children"),
                         State("st-started-from", "data")], prevent_initial_call=True)
    def show_style(view, tab, state, steps, said, started_from):
        if tab != "style" or not state or not view:
            return answer(styled)
        try:
            view, state, steps = checks.view(view), checks.run_state(state), checks.steps(steps)
            run_id = data.check_run(state["run_id"])
            before = started_from.get("run") if isinstance(started_from, dict) else None
            ended = {"said": ""} if said == STARTING and run_id != before else {}  # the new run shows
            step = view["step"] if view["step"] in steps else None
            run = data.run(run_id)
            source = {name.removeprefix("source_"): float(run.params[name])
                      for name in SOURCE_STYLE_PARAMS if name in run.params}
            sample = data.snapshot(run_id, step).sample if step is not None else None
            match_steps, matches = data.series(run_id, STYLE_MATCH, run)
        except (LLMBError, ValueError) as exc:
            return answer(styled, match=f"Cannot show the style: {exc}")
        now = dict(zip(match_steps, matches)).get(step)
        words = (f"Style match at step {step}: {now:.0f}%" if now is not None
                 else "No style match recorded for this run (trained before LLMBreaker measured it).")
        return answer(styled, match=words, table=style_table(source or None, sample, step),
                      chart=match_figure(match_steps, matches, step), **ended)
