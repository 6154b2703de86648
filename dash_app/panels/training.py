"""The "New training" menu: start a training in its own process on a bundled corpus or an
uploaded .txt file, with a preset and the main settings; the viewer then shows it live."""

from __future__ import annotations

import base64
import binascii

from dash import Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow.config import DEFAULT_PRESET, PRESETS, ModelConfig, TrainConfig, build_config
from llmb_mlflow.corpus import BUNDLED, MAX_CORPUS_BYTES, store_upload
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.launcher import launch

# (setting, label, default shown as the field's placeholder)
SETTINGS = [("max_iters", "steps", TrainConfig.max_iters),
            ("batch_size", "batch", TrainConfig.batch_size),
            ("lr", "learning rate", TrainConfig.lr),
            ("eval_interval", "snapshot every", TrainConfig.eval_interval),
            ("temperature", "temperature", TrainConfig.temperature),
            ("block_size", "context", "preset's"),
            ("dropout", "dropout", ModelConfig.dropout)]
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


def corpus_options(uploaded: list[dict] | None = None) -> list[dict]:
    return [{"label": name, "value": name} for name in BUNDLED] + list(uploaded or [])


def layout() -> html.Details:
    fields = [html.Div([html.Label(label, htmlFor=field_id(key)),
                        dcc.Input(id=field_id(key), type="number", placeholder=str(default),
                                  className="num")], className="field")
              for key, label, default in SETTINGS]
    return html.Details([
        html.Summary("New training", id="train-summary"),
        html.Div([
            html.Div([
                html.Div([html.Label("corpus"),
                          dcc.Dropdown(id="train-corpus", options=corpus_options(), value=BUNDLED[0],
                                       clearable=False, className="corpus-picker")], className="field"),
                dcc.Upload(html.Span(["or drop / ", html.A("choose a .txt file"),
                                      f" (at most {MAX_CORPUS_BYTES // 2**20} MB)"]),
                           id="train-upload", accept=".txt,text/plain", className="upload"),
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
            dcc.Store(id="upload-payload"), dcc.Store(id="uploaded", data=[]),
        ], className="menu-body"),
    ], id="train-menu", className="menu writes")


def training_args(corpus: str, preset: str, values: dict, experiment: str, run_name: str | None) -> list[str]:
    """The ``llmb train`` arguments for the form, checked as the trainer will check them."""
    settings = {k: v for k, v in values.items() if v is not None}
    build_config(preset, dataset=corpus, **settings)
    args = ["train", "--dataset", corpus, "--preset", preset, "--experiment", experiment]
    for key, value in settings.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return args + (["--run-name", run_name] if run_name else [])


def decode_upload(payload: dict) -> tuple[str, bytes]:
    contents, filename = payload.get("contents") or "", payload.get("filename") or ""
    try:
        return filename, base64.b64decode(contents.partition(",")[2], validate=True)
    except (binascii.Error, ValueError):
        raise LLMBError(f"{filename or 'the file'} did not arrive intact; try again") from None


def register(app, data) -> None:
    toast = (Output("toast", "children", allow_duplicate=True),
             Output("toast", "className", allow_duplicate=True))
    app.clientside_callback(TOO_BIG_JS, Output("upload-payload", "data"), *toast,
                            Input("train-upload", "contents"), State("train-upload", "filename"),
                            prevent_initial_call=True)

    @app.callback(Output("train-corpus", "options"), Output("train-corpus", "value"),
                  Output("uploaded", "data"), *toast,
                  Input("upload-payload", "data"), State("uploaded", "data"), prevent_initial_call=True)
    def upload(payload, uploaded):
        if not payload:
            return (no_update,) * 5
        try:
            data.check_writable()
            filename, raw = decode_upload(payload)
            path = str(store_upload(filename, raw))
        except LLMBError as exc:
            return no_update, no_update, no_update, f"Could not upload: {exc}", "toast error"
        option = {"label": f"{filename} (uploaded)", "value": path}
        uploaded = [o for o in uploaded or [] if o["value"] != path] + [option]
        return (corpus_options(uploaded), path, uploaded,
                f"Uploaded {filename} ({len(raw) / 1024:.0f} KB).", "toast ok")

    @app.callback(*toast, Output("switch-run", "data", allow_duplicate=True),
                  Input("train-start", "n_clicks"), State("train-corpus", "value"),
                  State("train-preset", "value"), State("experiment", "value"),
                  State("train-run-name", "value"),
                  *[State(field_id(key), "value") for key, _, _ in SETTINGS], prevent_initial_call=True)
    def start(_, corpus, preset, experiment, run_name, *values):
        if ctx.triggered_id != "train-start":
            return (no_update,) * 3
        try:
            data.check_writable()
            args = training_args(corpus, preset, dict(zip([k for k, _, _ in SETTINGS], values)),
                                 experiment or data.experiment, (run_name or "").strip() or None)
            training = launch(args, data.training_uri())
        except LLMBError as exc:
            return f"Could not start: {exc}", "toast error", no_update
        return (f"Started run {training.run_id[:8]}: {preset} on {corpus.rsplit('/', 1)[-1]}.",
                "toast ok", training.run_id)
