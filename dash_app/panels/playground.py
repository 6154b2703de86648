"""The Token Playground tab: type a prompt and see the model's ten likeliest next characters, as
the model was at the step the scrubber shows; step, play or pick a bar to continue the text.

The only module of the viewer that uses torch, imported when a model is first needed. Draws are
seeded by the text's length, so the same prompt and the same choices give the same text."""

from __future__ import annotations

import threading

import numpy as np
from cachetools import LRUCache
from dash import Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow.errors import LLMBError

from .. import checks
from ..icons import labelled
from . import tour
from .probability_tower import visible

TOP = 10
SPEEDS_MS = (100, 250, 500, 1000, 2000)
DEFAULT_PROMPT = "ROMEO:\n"
MAX_TEXT = 2000
_models, _lock = LRUCache(4), threading.Lock()  # (run id, step) -> (model, vocab, step of its weights)


def next_probabilities(model, ids: list[int], temperature: float) -> np.ndarray:
    """The model's probability of each character coming after ``ids`` (its last block)."""
    import torch

    context = torch.tensor([ids[-model.cfg.block_size:]], dtype=torch.long)
    with torch.inference_mode():
        logits = model(context)[0][0, -1].double()
    return torch.softmax(logits / temperature, -1).numpy()


def draw(probabilities: np.ndarray, seed: int, position: int) -> int:
    """One character, the same for the same seed, position and probabilities."""
    return int(np.random.default_rng([seed, position]).choice(len(probabilities), p=probabilities))


def from_checkpoint(raw: bytes, label: str):
    """(model, vocab) of a checkpoint file, loaded safely."""
    from llmb_mlflow import checkpoint

    model, tokenizer = checkpoint.build_model(checkpoint.load(raw, label))
    return model, tokenizer.chars


def build_model(config, state: dict[str, np.ndarray]):
    import torch

    from llmb_mlflow.model import MicroGPT

    model = MicroGPT(config)
    try:
        model.load_state_dict({name: torch.from_numpy(array) for name, array in state.items()})
    except (RuntimeError, KeyError) as exc:
        raise LLMBError(f"the stored weights do not fit their model ({str(exc).splitlines()[0][:200]})") from None
    return model.eval()


def bars_figure(vocab: str, probabilities: np.ndarray, temperature: float) -> dict:
    """The ten likeliest next characters, likeliest on top; a click on a bar picks it."""
    top = np.argsort(probabilities)[::-1][:TOP]
    labels = [f"{visible(vocab[i])} " for i in top]
    return {
        "data": [{"type": "bar", "orientation": "h", "x": [float(probabilities[i]) for i in top], "y": labels,
                  "customdata": [int(i) for i in top], "marker": {"color": "#6f42c1"},
                  "text": [f"{probabilities[i]:.1%}" for i in top], "textposition": "outside",
                  "hovertemplate": "%{y}: %{x:.1%} (click to write it)<extra></extra>"}],
        "layout": {"height": 330, "margin": {"l": 44, "r": 50, "t": 30, "b": 30}, "clickmode": "event",
                   "title": {"text": f"what comes next, at temperature {temperature:g}", "font": {"size": 12}},
                   "xaxis": {"range": [0, 1.15], "tickformat": ".0%"},
                   "yaxis": {"autorange": "reversed", "type": "category",
                             "tickfont": {"size": 15, "family": "monospace"}},
                   "uirevision": "bars"},
    }


def shown_text(text: str, block_size: int) -> list:
    """The text so far, the part the model reads (its last ``block_size`` characters) marked."""
    cut = max(len(text) - block_size, 0)
    return [html.Span(text[:cut], className="pg-old"), html.Span(text[cut:], className="pg-context",
                                                                 title=f"what the model reads: the last {block_size} characters")]


def layout() -> html.Div:
    return html.Div([
        html.Section([
            tour.heading("Write with the model", "playground"),
            html.Div([
                html.Label("prompt", htmlFor="pg-prompt"),
                dcc.Input(id="pg-prompt", value=DEFAULT_PROMPT.strip(), debounce=True, className="pg-prompt",
                          maxLength=500),
                html.Button(labelled("step", "Step"), id="pg-step", className="ctl-btn", title="write one character"),
                html.Button(labelled("play", "Play"), id="pg-play", className="ctl-btn"),
                dcc.Dropdown(id="pg-speed", options=[{"label": f"{ms} ms", "value": ms} for ms in SPEEDS_MS],
                             value=500, clearable=False, className="speed", searchable=False),
                html.Button("Regenerate", id="pg-regenerate", className="ctl-btn",
                            title="start again from the prompt with other draws"),
            ], className="chart-controls pg-controls"),
            html.Div([html.Label("temperature"),
                      dcc.Slider(id="pg-temperature", min=0.1, max=2.0, step=0.1, value=1.0,
                                 marks={0.1: "0.1", 1: "1", 2: "2"}, allow_direct_input=False)],
                     className="chart-controls"),
            html.Pre(id="pg-text", className="pg-text"),
            html.Div(id="pg-model-step", className="pg-note"),
            html.Div(id="pg-error", className="error"),
        ], id="playground-panel", className="panel"),
        html.Section([html.H3("The ten likeliest next characters"),
                      dcc.Graph(id="pg-bars", config={"displayModeBar": False})], id="bars-panel", className="panel"),
        dcc.Store(id="pg-state", data={"text": DEFAULT_PROMPT.strip(), "seed": 0}),
        dcc.Interval(id="pg-tick", interval=500, disabled=True),
    ], className="watch-grid")


def register(app, data) -> None:
    def model_at(run_id: str, step: int):
        """(model, vocab, the step its weights are from): the step's own weights, else (a run
        that kept them only in checkpoints) its last checkpoint by then."""
        key = (run_id, step)
        with _lock:
            if key in _models:
                return _models[key]
        try:
            config, state = data.weights(run_id, step)
            built = (build_model(config, state), data.snapshot(run_id, step).vocab, step)
        except LLMBError:
            used, raw = data.checkpoint_before(run_id, step)
            built = (*from_checkpoint(raw, f"checkpoint of step {used}"), used)
        with _lock:
            _models[key] = built
        return built

    @app.callback(Output("pg-state", "data"), Output("pg-bars", "figure"), Output("pg-text", "children"),
                  Output("pg-model-step", "children"), Output("pg-error", "children"),
                  Input("pg-prompt", "value"), Input("pg-step", "n_clicks"), Input("pg-tick", "n_intervals"),
                  Input("pg-regenerate", "n_clicks"), Input("pg-bars", "clickData"), Input("pg-temperature", "value"),
                  Input("view", "data"), Input("tabs", "value"),
                  State("pg-state", "data"), State("run-state", "data"), State("steps", "data"),
                  prevent_initial_call=True)
    def play(prompt, _step, _tick, _regenerate, click, temperature, view, tab, state, run_state, steps):
        if tab != "playground" or not run_state or not view:
            return (no_update,) * 5
        try:
            prompt = checks.text(prompt, 500) or "\n"
            temperature = checks.number(temperature or 1.0, "temperature", 0.1, 2.0)
            view, run_state, steps = checks.view(view), checks.run_state(run_state), checks.steps(steps)
            state = checks.playground(state)
            run_id = data.check_run(run_state["run_id"])
        except LLMBError as exc:
            return (no_update,) * 4 + (f"Cannot use the playground: {exc}",)
        step = view["step"]
        if step is None or step not in steps:
            return (no_update,) * 4 + ("No snapshot to play with yet.",)
        try:
            model, vocab, used = model_at(run_id, step)
        except LLMBError as exc:
            return (no_update,) * 4 + (f"Cannot load the model at step {step}: {exc}",)
        unknown = sorted({c for c in prompt if c not in vocab})
        if unknown:
            return (no_update,) * 4 + (f"The prompt has characters this model never saw: {''.join(unknown)!r}",)
        trigger = ctx.triggered_id
        text, seed = state["text"], state["seed"]
        if trigger in ("pg-prompt", "pg-regenerate") or not text.startswith(prompt) or any(c not in vocab for c in text):
            text, seed = prompt, seed + (trigger == "pg-regenerate")
        ids = [vocab.index(c) for c in text]
        if trigger in ("pg-step", "pg-tick") and len(text) < MAX_TEXT:
            ids.append(draw(next_probabilities(model, ids, temperature), seed, len(ids)))
        elif trigger == "pg-bars":
            picked = _picked(click, len(vocab))
            if picked is not None and len(text) < MAX_TEXT:
                ids.append(picked)
        text = "".join(vocab[i] for i in ids)
        probabilities = next_probabilities(model, ids, temperature)
        return ({"text": text, "seed": seed}, bars_figure(vocab, probabilities, temperature),
                shown_text(text, model.cfg.block_size),
                _which_model(step, used), "")

    @app.callback(Output("pg-tick", "disabled"), Output("pg-tick", "interval"), Output("pg-play", "children"),
                  Input("pg-play", "n_clicks"), Input("pg-speed", "value"), Input("tabs", "value"),
                  State("pg-tick", "disabled"), prevent_initial_call=True)
    def play_pause(_, speed, tab, stopped):
        try:
            speed = checks.choice(speed, "speed", SPEEDS_MS)
        except LLMBError:
            return no_update, no_update, no_update
        playing = ctx.triggered_id == "pg-play" and stopped is not False and tab == "playground"
        if ctx.triggered_id == "pg-speed":
            playing = stopped is False
        return not playing, speed, labelled("pause", "Pause") if playing else labelled("play", "Play")


def _which_model(step: int, used: int) -> str:
    if used == step:
        return f"The model as it was at step {step} (move the scrubber to try another step)."
    return (f"The model as it was at step {used}, its last checkpoint by step {step}: this run kept "
            "the model's weights only in its checkpoints (--no-step-weights).")


def _picked(click, vocab_size: int) -> int | None:
    """The character of a clicked bar, as the page sent it."""
    try:
        value = click["points"][0]["customdata"]
    except (TypeError, KeyError, IndexError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < vocab_size else None
