"""The model library menu: registered LLMBreaker models and saving the shown run's model."""

from __future__ import annotations

import time

from dash import Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow import control
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.registry import ModelLibrary

CHECKPOINT_WAIT_SECONDS = 30


def models_table(listing) -> list:
    """``listing``: (name, versions) pairs as ``ModelLibrary.models`` returns them."""
    if not listing:
        return [html.Div("No saved models yet.", className="empty")]
    rows = [html.Tr([html.Th(h) for h in ("model", "version", "step", "train loss", "val loss",
                                          "aliases", "dataset")])]
    for name, versions in listing:
        for v in versions:
            rows.append(html.Tr([
                html.Td(name), html.Td(v.version), html.Td(v.step), html.Td(_fmt(v.train_loss)),
                html.Td(_fmt(v.val_loss)), html.Td(", ".join(v.aliases) or "-"), html.Td(v.dataset),
            ], className="model-row"))
    return [html.Table(rows, className="models-table")]


def suggested_name(run) -> str:
    return f"{run.params.get('preset', 'model')}-{run.params.get('dataset', 'corpus')}".replace(".", "-")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def layout() -> html.Details:
    return html.Details([
        html.Summary("Models"),
        html.Div([
            dcc.Input(id="save-name", placeholder="name for the shown run's model", debounce=False,
                      className="save-name"),
            html.Button("Save current model", id="save-model", className="ctl-btn"),
        ], className="save-row"),
        html.Div(id="models-list"),
    ], id="models-menu", className="models-menu")


def save_current(library: ModelLibrary, run_id: str, name: str, wait_seconds: float) -> str:
    """Register the run's model: its latest checkpoint if it has ended, otherwise a checkpoint
    the trainer is asked to write now. Returns a one-line summary."""
    run = library.reader.run(run_id)
    if run.status == "RUNNING":
        step = run.last_step
        control.send(library.client, run_id, "checkpoint")
        deadline = time.monotonic() + wait_seconds
        while not any(s >= step for s in library.checkpoint_steps(run_id)):
            if time.monotonic() > deadline:
                raise LLMBError("the training did not write a checkpoint in time; is it still alive?")
            time.sleep(0.25)  # the trainer checkpoints within about a second
    version = library.save(run_id, name)
    return f"Saved step {version.step} as {version.ref}."


def register(app, data) -> None:
    library = ModelLibrary(reader=data.reader)

    @app.callback(Output("models-list", "children"), Input("models-menu", "n_clicks"),
                  Input("toast", "children"))
    def list_models(_clicks, _toast):
        try:
            return models_table(library.models())
        except LLMBError as exc:
            return [html.Div(f"Could not list models: {exc}", className="error")]

    @app.callback(Output("save-name", "value"), Input("run", "value"))
    def suggest(run_id):
        if not run_id:
            return no_update
        try:
            return suggested_name(data.run(run_id))
        except LLMBError:
            return no_update

    @app.callback(Output("toast", "children", allow_duplicate=True),
                  Output("toast", "className", allow_duplicate=True),
                  Input("save-model", "n_clicks"), State("save-name", "value"), State("run-state", "data"),
                  prevent_initial_call=True)
    def save(_, name, state):
        if not state or ctx.triggered_id != "save-model":
            return no_update, no_update
        try:
            return save_current(library, state["run_id"], (name or "").strip(),
                                CHECKPOINT_WAIT_SECONDS), "toast ok"
        except LLMBError as exc:
            return f"Could not save: {exc}", "toast error"
