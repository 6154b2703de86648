"""The Token Playground tab: type a prompt and see the model's ten likeliest next tokens (or
characters), as the model was at the step the scrubber shows; step, play or pick a bar to
continue the text.

The only module of the viewer that uses torch, imported when a model is first needed. Draws are
seeded by the text's length, so the same prompt and the same choices give the same text.

The page keeps the moves (assets/playground.js: every Step, tick and picked bar appended at once,
in order); the server applies those its state has not applied yet (``advance``), so a click sent
while the previous answer is on its way is applied all the same. Each step's weights are decoded
once and kept (LRU, by size) and loaded into one built model per shape (``Models``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from cachetools import LRUCache
from dash import ClientsideFunction, Input, Output, State, ctx, dcc, html

from llmb_mlflow.launch import limits
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.library.reader import MissingArtifact
from llmb_mlflow.run_layout import MODEL_TYPE, PARAM_MODEL
from llmb_mlflow.training.weights import OtherVersion
from llmb_mlflow.formats.vocabulary import Vocabulary
from llmb_mlflow.training.shapes import build as build_model, load_into

from .. import checks
from ..answers import answer
from ..figures.plotly_json import notice
from ..icons import labelled
from . import tour

TOP = 10
SPEEDS_MS = (100, 250, 500, 1000, 2000)
DEFAULT_PROMPT = "ROMEO:\n"
MAX_TEXT = 2000
MAX_PENDING = 64  # moves applied by one request (a person's clicks during one answer are far fewer)
DRAW = -1  # a move: draw the next token (else a move is the id of a picked token)
LOADING = "Loading the model at this step…"
CACHE_BYTES = 64 * 2**20  # decoded weights kept: 75 steps of `medium`, 20 of `large`


def next_probabilities(model, ids: list[int], temperature: float) -> np.ndarray:
    """The model's probability of each token coming after ``ids`` (its last block)."""
    import torch

    context = torch.tensor([ids[-model.cfg.block_size:]], dtype=torch.long)
    with torch.inference_mode():
        logits = model(context)[0][0, -1].double()
    return torch.softmax(logits / temperature, -1).numpy()


def draw(probabilities: np.ndarray, seed: int, position: int) -> int:
    """One token, the same for the same seed, position and probabilities."""
    return int(np.random.default_rng([seed, position]).choice(len(probabilities), p=probabilities))


def advance(state: dict, wanted: dict, vocab: Vocabulary, next_id: Callable[[list[int]], int],
            encode: Callable[[str], list[int]]) -> tuple[dict, list[int]]:
    """The playground's state after the page's moves, and its text as ids.

    ``state`` ({text, ids, turn, done}) says how many of the moves of its turn are in its text;
    ``wanted`` ({prompt, seed, turn, moves}) is what the page asks: a new turn (a new prompt, or
    Regenerate) starts again from the prompt. Each move not yet done is applied once, in order
    (at most MAX_PENDING per call; the text stops at MAX_TEXT characters or tokens): DRAW appends
    ``next_id(ids)``, any other move that token. A request sent before the previous answer
    arrived carries an older state and more moves: the result is the same. The state keeps the
    ids the text was written in (a text of tokens can be cut into them in several ways);
    ``encode`` cuts a text the state holds no ids of (LLMBError: it has characters no token has)."""
    prompt, moves = wanted["prompt"], wanted["moves"]
    text, done, ids = state["text"], state["done"], state.get("ids")
    if state["turn"] != wanted["turn"] or done > len(moves) or not text.startswith(prompt):
        text, done, ids = prompt, 0, None
    if ids is None or any(i >= len(vocab) for i in ids) or vocab.decode(ids) != text:  # or another run's ids
        try:
            ids = list(encode(text))
        except LLMBError:  # another run's model, with other characters
            text, done, ids = prompt, len(moves), list(encode(prompt))
    length = len(text)
    for move in moves[done:done + MAX_PENDING]:
        if len(ids) >= MAX_TEXT or length >= MAX_TEXT:
            break
        if move == DRAW:
            ids.append(next_id(ids))
        elif 0 <= move < len(vocab):
            ids.append(move)
        else:
            continue
        length += len(vocab.tokens[ids[-1]])
    return {"text": vocab.decode(ids), "ids": ids, "turn": wanted["turn"], "done": len(moves)}, ids


def encoder(vocab: Vocabulary) -> Callable[[str], list[int]]:
    """Text as the ids of ``vocab``: a character each, or the longest token that matches at each
    place (what a word vocabulary gives, and close to what a BPE tokenizer does)."""
    from llmb_mlflow.training.vocabulary import TokenTokenizer

    if vocab.is_chars:
        index = {c: i for i, c in enumerate(vocab.tokens)}

        def encode(text: str) -> list[int]:
            unknown = sorted({c for c in text if c not in index})
            if unknown:
                raise LLMBError(f"the prompt has characters this model never saw: {''.join(unknown)!r}")
            return [index[c] for c in text]

        return encode
    tokens = TokenTokenizer(vocab)

    def encode(text: str) -> list[int]:
        try:
            return [int(i) for i in tokens.encode(text)]
        except LLMBError:  # (the text is cut once; only a refusal looks for what it lacks)
            unknown = "".join(tokens.unknown_chars(text))
            raise LLMBError(f"the prompt has characters no token of this model has: {unknown!r}") from None

    return encode


class Models:
    """The model as it was at any step of a run's time line, for one evaluation at a time (hold
    ``lock`` while using what ``at`` returns): each step's weights read and decoded once and kept
    (LRU, up to CACHE_BYTES), loaded into the one built model of their shape (a swap is a
    ``load_state_dict``, not a new model); the last few answers remembered (a Step draws from the
    bars the page shows, without a second forward pass)."""

    def __init__(self, data, cache_bytes: int = CACHE_BYTES):
        self.data = data
        self.lock = threading.Lock()
        self._weights = LRUCache(cache_bytes, getsizeof=lambda w: sum(t.nbytes for t in w[1].values()))
        self._vocabs = LRUCache(256)  # run id -> its characters (every snapshot of a run has the same)
        self._built = LRUCache(2)  # ModelConfig -> [model, the (run id, step) of the weights it holds]
        self._answers = LRUCache(256)  # (run id, step, temperature, context) -> next_probabilities
        self._encoders = LRUCache(16)  # run id -> encoder(its vocabulary)

    def at(self, run_id: str, step: int):
        """(model, vocab, the step its weights are from): the step's own weights, else (a run
        that kept them only in checkpoints) its last checkpoint by then."""
        key = (run_id, step)
        stored = self._weights.get(key)
        if stored is None:
            stored = self._load(run_id, step)
            if self._weights.getsizeof(stored) <= self._weights.maxsize:  # else used, not kept
                self._weights[key] = stored
        config, state, vocab, used = stored
        if config not in self._built:  # ``config`` and ``state`` were checked as they were read
            self._built[config] = [build_model(config, state), key]
        built = self._built[config]
        if built[1] != key:
            built[1] = None  # until loaded: a failed load leaves no half-loaded model named as a step's
            load_into(built[0], state)
            built[1] = key
        return built[0], vocab, used

    def probabilities(self, run_id: str, step: int, ids: list[int], temperature: float) -> np.ndarray:
        """``next_probabilities`` of the model at ``step`` after ``ids`` (do not change it)."""
        model = self.at(run_id, step)[0]
        key = (run_id, step, temperature, tuple(ids[-model.cfg.block_size:]))
        if key not in self._answers:
            self._answers[key] = next_probabilities(model, ids, temperature)
        return self._answers[key]

    def encoder(self, run_id: str, vocab: Vocabulary) -> Callable[[str], list[int]]:
        """``encoder(vocab)`` of the run, made once (a token vocabulary's takes a moment)."""
        made = self._encoders.get(run_id)
        if made is None or made[0] != vocab:
            made = self._encoders[run_id] = (vocab, encoder(vocab))
        return made[1]

    def _load(self, run_id: str, step: int):
        """(model settings, weights, vocab, the step they are from), as ``build_model`` takes them."""
        try:
            config, arrays = self.data.weights(run_id, step)
        except (MissingArtifact, OtherVersion):  # trained with --no-step-weights, or weights of another format
            return self._checkpoint_before(run_id, step)
        if run_id not in self._vocabs:
            self._vocabs[run_id] = self.data.snapshot(run_id, step).vocab
        return config, arrays, self._vocabs[run_id], step

    def _checkpoint_before(self, run_id: str, step: int):
        from llmb_mlflow.training import checkpoint

        try:
            used, raw = self.data.checkpoint_before(run_id, step)
        except LLMBError:
            model = self.data.run(run_id).params.get(PARAM_MODEL, MODEL_TYPE)
            if model == MODEL_TYPE:
                raise
            raise LLMBError(f"this run records a {checks.label(model)} with llmb.record, and kept no weights by step "
                            f"{step} that the Playground can run") from None
        state = checkpoint.load(raw, f"checkpoint of step {used} in run {run_id}", limits.MAX_LOADED_PARAMETERS)
        config, weights, vocab = checkpoint.stored_model(state)
        return config, weights, Vocabulary(vocab), used


def bars_figure(vocab, probabilities: np.ndarray, temperature: float) -> dict:
    """The ten likeliest next tokens, likeliest on top; a click on a bar picks it."""
    top = np.argsort(probabilities)[::-1][:TOP]
    labels = [f"{shown} " for shown in Vocabulary(vocab).labels(top)]
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


def shown_text(vocab: Vocabulary, ids: list[int], block_size: int) -> list:
    """The text so far, the part the model reads (its last ``block_size`` tokens) marked."""
    cut = len(vocab.decode(ids[:max(len(ids) - block_size, 0)]))
    text = vocab.decode(ids)
    what = "characters" if vocab.is_chars else "tokens"
    return [html.Span(text[:cut], className="pg-old"),
            html.Span(text[cut:], className="pg-context", title=f"what the model reads: the last {block_size} {what}")]


def layout() -> html.Div:
    return html.Div([
        html.Section([
            tour.heading("Write with the model", "playground"),
            html.Div([
                html.Label("prompt", htmlFor="pg-prompt"),
                dcc.Input(id="pg-prompt", value=DEFAULT_PROMPT.strip(), debounce=True, className="pg-prompt",
                          maxLength=500),
                html.Button(labelled("step", "Step"), id="pg-step", className="ctl-btn", title="write one more token"),
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
            html.Pre(LOADING, id="pg-text", className="pg-text"),
            html.Div(id="pg-model-step", className="pg-note"),
            html.Div(id="pg-error", className="error"),
        ], id="playground-panel", className="panel"),
        html.Section([html.H3("The ten likeliest next characters", id="pg-bars-title"),
                      dcc.Graph(id="pg-bars", config={"displayModeBar": False}, figure=notice(LOADING))],
                     id="bars-panel", className="panel"),
        dcc.Store(id="pg-moves", data={"prompt": DEFAULT_PROMPT.strip(), "seed": 0, "turn": 0, "moves": []}),
        dcc.Store(id="pg-state", data={"text": DEFAULT_PROMPT.strip(), "ids": None, "turn": 0, "done": 0}),
        dcc.Interval(id="pg-tick", interval=500, disabled=True),
    ], className="watch-grid")


def register(app, data) -> None:
    models = Models(data)
    app.clientside_callback(
        ClientsideFunction("playground", "move"),  # assets/playground.js
        Output("pg-moves", "data"),
        Input("pg-step", "n_clicks"), Input("pg-tick", "n_intervals"), Input("pg-regenerate", "n_clicks"),
        Input("pg-bars", "clickData"), Input("pg-prompt", "value"), State("pg-moves", "data"),
        prevent_initial_call=True)

    played = dict(state=Output("pg-state", "data"), bars=Output("pg-bars", "figure"), text=Output("pg-text", "children"),
                  model=Output("pg-model-step", "children"), error=Output("pg-error", "children"),
                  title=Output("pg-bars-title", "children"))

    @app.callback(output=played,
                  inputs=[Input("pg-moves", "data"), Input("pg-temperature", "value"),
                          Input("view", "data"), Input("tabs", "value")],
                  state=[State("pg-state", "data"), State("run-state", "data"), State("steps", "data")],
                  prevent_initial_call=True)
    def play(wanted, temperature, view, tab, state, run_state, steps):
        if tab != "playground" or not view:
            return answer(played)
        if not run_state:
            return answer(played, bars=notice("Choose a run to write with its model."), text="")
        try:
            wanted = checks.playground_moves(wanted)
            wanted["prompt"] = checks.text(wanted["prompt"], 500) or "\n"
            temperature = checks.number(temperature or 1.0, "temperature", 0.1, 2.0)
            view, run_state, steps = checks.view(view), checks.run_state(run_state), checks.steps(steps)
            state = checks.playground(state)
            run_id = data.check_run(run_state["run_id"])
        except LLMBError as exc:
            return answer(played, error=f"Cannot use the playground: {exc}")
        step = view["step"]
        if step is None or step not in steps:
            return answer(played, error="No snapshot to play with yet.", bars=notice(""), text="")
        with models.lock:  # one model evaluation at a time
            try:
                model, vocab, used = models.at(run_id, step)
            except LLMBError as exc:
                return answer(played, error=f"Cannot load the model at step {step}: {exc}", bars=notice(""),
                              text="")
            encode = models.encoder(run_id, vocab)
            try:
                encode(wanted["prompt"])
            except LLMBError as exc:
                return answer(played, error=f"{str(exc)[:1].upper()}{str(exc)[1:]}")
            state, ids = advance(state, wanted, vocab, lambda ids: draw(
                models.probabilities(run_id, step, ids, temperature), wanted["seed"], len(ids)), encode)
            probabilities = models.probabilities(run_id, step, ids, temperature)
        what = "characters" if vocab.is_chars else "tokens"
        return answer(played, state=state, bars=bars_figure(vocab, probabilities, temperature),
                      text=shown_text(vocab, ids, model.cfg.block_size), model=_which_model(step, used), error="",
                      title=f"The ten likeliest next {what}")

    ticking = dict(off=Output("pg-tick", "disabled"), interval=Output("pg-tick", "interval"),
                   label=Output("pg-play", "children"))

    @app.callback(output=ticking, inputs=[Input("pg-play", "n_clicks"), Input("pg-speed", "value"), Input("tabs", "value")],
                  state=[State("pg-tick", "disabled")], prevent_initial_call=True)
    def play_pause(_, speed, tab, stopped):
        try:
            speed = checks.choice(speed, "speed", SPEEDS_MS)
        except LLMBError:
            return answer(ticking)
        playing = ctx.triggered_id == "pg-play" and stopped is not False and tab == "playground"
        if ctx.triggered_id == "pg-speed":
            playing = stopped is False
        return answer(ticking, off=not playing, interval=speed,
                      label=labelled("pause", "Pause") if playing else labelled("play", "Play"))


def _which_model(step: int, used: int) -> str:
    if used == step:
        return f"The model as it was at step {step} (move the scrubber to try another step)."
    return (f"The model as it was at step {used}, its last checkpoint by step {step}: this run keeps the "
            "model's weights only in its checkpoints (llmb train --no-step-weights, or a model too large "
            "for llmb.record to keep at every snapshot).")

