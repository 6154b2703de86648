"""The "New training" menu: start a training in its own process on a bundled corpus or an
uploaded .txt file, with a preset and the main settings; the viewer then shows it live."""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

from dash import Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow.launch import limits
from llmb_mlflow.training.config import (
    DEFAULT_PRESET, PRESETS, SETTINGS, Setting, SettingError, TrainConfig, build_config,
)
from llmb_mlflow.training.corpus import BUNDLED, MAX_CORPUS_BYTES
from llmb_mlflow.errors import LLMBError, shown
from llmb_mlflow.launch.uploads import find_upload, is_upload_id

from .. import checks
from ..answers import answer, toast
from . import launches

# The settings the form has a field for, in its order (each field's label is its setting's).
FORM = tuple(SETTINGS[name] for name in ("max_iters", "batch_size", "lr", "eval_interval", "temperature",
                                         "block_size", "dropout"))
# base64 makes 3 bytes into 4 characters, after a "data:...;base64," header
MAX_UPLOAD_CHARS = 4 * -(-MAX_CORPUS_BYTES // 3) + 200
# Checked in the browser before the bytes are sent: base64 makes 3 bytes into 4 characters.
TOO_BIG_JS = f"""
function (contents, filename) {{
    if (!contents) {{ return [window.dash_clientside.no_update, window.dash_clientside.no_update,
                              window.dash_clientside.no_update]; }}
    const bytes = Math.floor((contents.length - contents.indexOf(",") - 1) * 3 / 4);
    if (bytes > {MAX_CORPUS_BYTES}) {{
        return [null, "Could not upload " + filename + ": it is " + (bytes / 1048576).toFixed(1)
                + " MB; the limit is {MAX_CORPUS_BYTES // 2**20} MB", "toast error"];
    }}
    return [{{"contents": contents, "filename": filename}}, window.dash_clientside.no_update,
            window.dash_clientside.no_update];
}}"""


def field_id(setting: str) -> str:
    return "train-" + setting.replace("_", "-")


def placeholder(setting: Setting) -> str:
    """What an empty field of the form stands for."""
    return "preset's" if setting.from_preset else str(setting.default)


def corpus_options(uploaded: list[dict] | None = None) -> list[dict]:
    return [{"label": name, "value": name} for name in BUNDLED] + list(uploaded or [])


def layout() -> html.Details:
    fields = [html.Div([html.Label(setting.label, htmlFor=field_id(setting.name)),
                        dcc.Input(id=field_id(setting.name), type="number", placeholder=placeholder(setting),
                                  className="num")], className="field")
              for setting in FORM]
    return html.Details([
        html.Summary("New training", id="train-summary"),
        html.Div([
            html.Div([
                html.Div([html.Label("corpus"),
                          dcc.Dropdown(id="train-corpus", options=corpus_options(), value=BUNDLED[0],
                                       clearable=False, className="corpus-picker")], className="field"),
                dcc.Upload(html.Span(["or drop / ", html.A("choose a .txt file"),
                                      f" (at most {MAX_CORPUS_BYTES // 2**20} MB)"]),
                           id="train-upload", className="upload"),  # any file: one the server refuses is said
                html.Div([html.Label("model"),
                          dcc.Dropdown(id="train-preset", clearable=False, value=DEFAULT_PRESET,
                                       options=[{"label": f"{name} ({p['n_layer']}x{p['n_embd']})",
                                                 "value": name} for name, p in PRESETS.items()],
                                       className="preset-picker")], className="field"),
            ], className="save-row"),
            html.Div(fields, className="save-row fields"),
            html.Div([dcc.Input(id="train-run-name", placeholder="run name (optional)", className="save-name"),
                      html.Button("Start training", id="train-start", className="ctl-btn")],
                     className="save-row"),
            html.Small("Empty fields keep their defaults. The training runs in its own process: "
                       "closing or refreshing this page does not stop it."),
            html.Div(id="train-feedback", className="menu-feedback", role="status"),
            dcc.Store(id="upload-payload"), dcc.Store(id="uploaded", data=[]),
        ], className="menu-body"),
    ], id="train-menu", className="menu writes")


class Form(NamedTuple):
    preset: str
    settings: dict  # with the checkpoint interval they make
    run_name: str | None


def training_args(corpus, preset, values: dict, experiment: str, run_name) -> list[str]:
    """The ``llmb train`` arguments for the form, every value checked as if a stranger typed it
    (``experiment`` is checked against the store by the caller)."""
    dataset = corpus_path(corpus)
    return train_command(dataset, checked_form(preset, values, run_name), experiment)


def checked_form(preset, values: dict, run_name) -> Form:
    """The form's values but the corpus, checked as if a stranger typed them."""
    preset = checks.choice(preset, "model", list(PRESETS))
    run_name = checks.argument(run_name, "run name", optional=True)
    settings = {s.name: checks.form_number(values.get(s.name), s.label, whole=s.kind is int) for s in FORM}
    settings = {key: value for key, value in settings.items() if value is not None}
    try:
        steps = build_config(preset, **settings).train.max_iters
        settings["checkpoint_interval"] = limits.checkpoint_interval(steps, TrainConfig.checkpoint_interval)
        limits.check_cost(build_config(preset, **settings))
    except SettingError as exc:
        raise LLMBError(exc.named(label)) from None
    return Form(preset, settings, run_name)


def label(name: str) -> str:
    """A setting as the form calls it."""
    return SETTINGS[name].label if name in SETTINGS and SETTINGS[name].label else name


def train_command(dataset: str, form: Form, experiment: str) -> list[str]:
    """``llmb train`` arguments; values go as ``--option=value`` so none can be read as another option."""
    args = ["train", f"--dataset={dataset}", f"--preset={form.preset}", f"--experiment={experiment}"]
    args += [f"{SETTINGS[key].option}={value}" for key, value in form.settings.items()]
    return args + ([f"--run-name={form.run_name}"] if form.run_name else [])


def corpus_path(value) -> str:
    """A bundled corpus's name, or the path of a file this viewer stored for an upload id."""
    if isinstance(value, str) and value in BUNDLED:
        return value
    if is_upload_id(value):
        return str(find_upload(value).path)
    raise LLMBError(f"corpus must be one of {', '.join(BUNDLED)} or a file uploaded here "
                    f"(got {shown(value)})")


def decode_upload(payload) -> tuple[str, bytes]:
    """The file name and bytes the page sent (its ``contents``: a base64 ``data:`` URL, as the
    browser reads a file), refused before decoding if too large."""
    if not isinstance(payload, dict):
        raise LLMBError(f"the upload is malformed (got {shown(payload)})")
    contents, filename = payload.get("contents"), payload.get("filename")
    if not isinstance(filename, str) or not isinstance(contents, str) or len(filename) > 1000:
        raise LLMBError(f"the upload is malformed (got {shown(payload)})")
    if len(contents) > MAX_UPLOAD_CHARS:
        raise LLMBError(f"{shown(filename)} is larger than the {MAX_CORPUS_BYTES // 2**20} MB limit")
    if contents == "data:":  # how a browser may read an empty file
        return filename, b""
    header, comma, encoded = contents.partition(",")
    if not (comma and header.startswith("data:") and header.endswith(";base64")):
        raise LLMBError(f"the upload is malformed (its contents are not a base64 data: URL; got {shown(contents, 40)})")
    try:
        return filename, base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise LLMBError(f"the upload is malformed (the contents of {shown(filename)} are not base64)") from None


def uploaded_options(value) -> list[dict]:
    """The page's list of its uploads, keeping only well-formed entries."""
    if not isinstance(value, list):
        return []
    return [{"label": o["label"], "value": o["value"]} for o in value[:100]
            if isinstance(o, dict) and isinstance(o.get("label"), str) and len(o["label"]) <= 300
            and is_upload_id(o.get("value"))]


def register(app, data) -> None:
    too_big = (Output("toast", "children", allow_duplicate=True),  # said in the page, before any upload
               Output("toast", "className", allow_duplicate=True))

    @app.callback(Output("train-start", "disabled"), Output("train-start", "title"),
                  Output("st-start", "disabled"), Output("st-start", "title"), Output("train-upload", "disabled"),
                  Input("experiment", "value"))
    def may_train(experiment):
        refusal = data.refusal_to_train(experiment)
        off = bool(refusal) and not data.read_only  # a read-only page hides them; the server refuses a click
        return (off, refusal or "start a new training in the shown experiment",
                off, refusal or "train a small model on this text in the shown experiment", off)
    app.clientside_callback(TOO_BIG_JS, Output("upload-payload", "data"), *too_big,
                            Input("train-upload", "contents"), State("train-upload", "filename"),
                            prevent_initial_call=True)

    offered = dict(options=Output("train-corpus", "options"), corpus=Output("train-corpus", "value"),
                   uploaded=Output("uploaded", "data"))

    @app.callback(output=offered, inputs=[Input("upload-payload", "data")],
                  state=[State("uploaded", "data"), State("experiment", "value")], prevent_initial_call=True)
    def upload(payload, uploaded, experiment):
        if not payload:
            return answer(offered)
        try:
            data.check_writable()
            filename, raw = decode_upload(payload)
            stored = data.keep_upload(filename, raw, experiment)
        except LLMBError as exc:
            toast(f"Could not upload: {exc}", ok=False)
            return answer(offered)
        option = {"label": f"{stored.name} (uploaded)", "value": stored.id}
        uploaded = [o for o in uploaded_options(uploaded) if o["value"] != stored.id] + [option]
        toast(f"Uploaded {stored.name} ({len(raw) / 1024:.0f} KB).")
        return answer(offered, options=corpus_options(uploaded), corpus=stored.id, uploaded=uploaded)

    @app.callback(Output("pending-launch", "data"),
                  Input("train-start", "n_clicks"), State("train-corpus", "value"),
                  State("train-preset", "value"), State("experiment", "value"),
                  State("train-run-name", "value"),
                  *[State(field_id(s.name), "value") for s in FORM], prevent_initial_call=True)
    def start(_, corpus, preset, experiment, run_name, *values):
        if ctx.triggered_id != "train-start":
            return no_update
        try:
            data.check_writable()
            args = training_args(corpus, preset, dict(zip([s.name for s in FORM], values)),
                                 data.experiment_to_train_in(experiment or data.experiment), run_name)
            started = data.start_training(args)
        except LLMBError as exc:
            toast(f"Could not start: {exc}", ok=False)
            return no_update
        what = f"{preset} on {corpus.rsplit('/', 1)[-1]}"  # a bundled name, or an upload's file name
        toast(f"Starting a training: {what}...")
        return launches.pending(started, f"Started run {{run}}: {what}.", "Could not start")
