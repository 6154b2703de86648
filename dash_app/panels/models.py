"""The model library menu: the registered LLMBreaker models, and saving, renaming, deleting and
loading them (a load resumes training in a new run, which the viewer then shows)."""

from __future__ import annotations

import time

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow import control
from llmb_mlflow.errors import LLMBError, shown
from llmb_mlflow.launcher import launch
from llmb_mlflow.registry import ModelLibrary, check_name

from .. import checks

CHECKPOINT_WAIT_SECONDS = 30
DEFAULT_MORE_STEPS = 1000
MAX_MORE_STEPS = 10**9
ACTIONS = ("rename", "delete", "delete-no", "delete-yes", "load")
HEADERS = ("model", "version", "step", "train loss", "val loss", "aliases", "dataset", "")


def action_id(action: str, name: str, version: str = "") -> dict:
    return {"type": "model-action", "action": action, "model": name, "version": version}


def models_table(listing, renaming: str | None = None, deleting: dict | None = None) -> list:
    """``listing``: (name, versions) pairs as ``ModelLibrary.models`` returns them;
    ``renaming``: the model whose name is being edited; ``deleting``: the version awaiting a yes."""
    if not listing:
        return [html.Div("No saved models yet.", className="empty")]
    rows = [html.Tr([html.Th(h) for h in HEADERS])]
    for name, versions in listing:
        for i, v in enumerate(versions):
            rows.append(html.Tr([
                html.Td(_name_cell(name, renaming) if i == 0 else ""), html.Td(v.version),
                html.Td(v.step), html.Td(_fmt(v.train_loss)), html.Td(_fmt(v.val_loss)),
                html.Td(", ".join(v.aliases) or "-"), html.Td(v.dataset),
                html.Td(_version_actions(name, v.version, len(versions), deleting)),
            ], className="model-row", **{"data-model": name, "data-version": v.version}))
    return [html.Table(rows, className="models-table")]


def _name_cell(name: str, renaming: str | None):
    if name == renaming:
        return html.Span([
            dcc.Input(id={"type": "rename-input", "model": name}, value=name, autoFocus=True,
                      className="rename-input", debounce=False),
            html.Small(" Enter renames, Escape cancels", className="hint")])
    return html.Span([html.Span(name, className="model-name"),
                      html.Button("✎", id=action_id("rename", name), className="link-btn rename writes",
                                  title=f"rename {name}")])


def _version_actions(name: str, version: str, count: int, deleting: dict | None):
    if deleting == {"model": name, "version": version}:
        what = f"{name} (its only version)" if count == 1 else f"version {version} of {name}"
        return html.Span([f"Delete {what}? ",
                          html.Button("Delete", id=action_id("delete-yes", name, version),
                                      className="ctl-btn danger delete-yes"),
                          html.Button("Cancel", id=action_id("delete-no", name, version),
                                      className="ctl-btn delete-no")], className="confirm")
    return html.Span(className="writes", children=[
        html.Button("Load", id=action_id("load", name, version), className="ctl-btn load",
                    title="continue training this checkpoint in a new run"),
        html.Button("Delete", id=action_id("delete", name, version), className="ctl-btn delete",
                    title="delete this version (the checkpoint stays in its run)"),
    ])


def suggested_name(run) -> str:
    return f"{run.params.get('preset', 'model')}-{run.params.get('dataset', 'corpus')}".replace(".", "-")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def layout() -> html.Details:
    return html.Details([
        html.Summary("Models", id="models-summary"),
        html.Div([
            html.Div([
                dcc.Input(id="save-name", placeholder="name for the shown run's model", debounce=False,
                          className="save-name"),
                html.Button("Save current model", id="save-model", className="ctl-btn"),
            ], className="save-row writes"),
            html.Div([
                html.Label("Load trains", htmlFor="load-steps"),
                dcc.Input(id="load-steps", type="number", min=1, step=1, value=DEFAULT_MORE_STEPS,
                          className="num"),
                html.Span("more steps, in a new run"),
            ], className="save-row writes"),
            html.Div(id="models-feedback", className="menu-feedback", role="status"),
            html.Div(id="models-list"),
            html.Button(id="rename-cancel", hidden=True),  # Escape in the rename field clicks it
            dcc.Store(id="renaming"), dcc.Store(id="deleting"),
        ], className="menu-body"),
    ], id="models-menu", className="menu")


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


def delete_version(library: ModelLibrary, name: str, version: str) -> str:
    """Delete one version; the model itself goes with its last version."""
    if len(library.versions(name)) <= 1:
        library.delete(name)
        return f"Deleted model {name}."
    library.delete(name, version)
    return f"Deleted version {version} of {name}."


def load_version(library: ModelLibrary, training_uri: str, ref: str, more_steps, experiment: str):
    """Resume a saved version in a new run (its own process); returns (run id, summary)."""
    if isinstance(more_steps, bool) or not isinstance(more_steps, int) or not 1 <= more_steps <= MAX_MORE_STEPS:
        raise LLMBError("the number of more steps to train must be a whole number from 1 to "
                        f"{MAX_MORE_STEPS} (got {shown(more_steps)})")
    version = library.resolve(ref)
    training = launch(["resume", f"--max-iters={version.step + more_steps}", f"--experiment={experiment}",
                       "--", version.ref], training_uri)
    return training.run_id, (f"Loaded {version.ref} (step {version.step}); training on to step "
                             f"{version.step + more_steps} in a new run.")


def model_action(which) -> tuple[str, str, str]:
    """(action, model name, version) of a clicked table button's id, as a stranger might send it."""
    if not isinstance(which, dict):
        raise LLMBError(f"unknown model action {shown(which)}")
    action = checks.choice(which.get("action"), "model action", ACTIONS)
    name = check_name(which.get("model"))
    version = which.get("version")
    if action != "rename" and not (isinstance(version, str) and version.isdigit() and len(version) < 10):
        raise LLMBError(f"model version {shown(version)} is not a version number")
    return action, name, version


def register(app, data) -> None:
    library = ModelLibrary(reader=data.reader)
    toast = (Output("toast", "children", allow_duplicate=True),
             Output("toast", "className", allow_duplicate=True))

    @app.callback(Output("models-list", "children"), Input("models-summary", "n_clicks"),
                  Input("toast", "children"), Input("renaming", "data"), Input("deleting", "data"))
    def list_models(_clicks, _toast, renaming, deleting):
        try:
            return models_table(library.models(), renaming, deleting)
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

    @app.callback(*toast, Input("save-model", "n_clicks"), State("save-name", "value"),
                  State("run-state", "data"), prevent_initial_call=True)
    def save(_, name, state):
        if not state or ctx.triggered_id != "save-model":
            return no_update, no_update
        try:
            data.check_writable()
            name = checks.name(name, "model name", optional=True) or ""
            run_id = data.check_run(checks.run_state(state)["run_id"])
            return save_current(library, run_id, name, CHECKPOINT_WAIT_SECONDS), "toast ok"
        except LLMBError as exc:
            return f"Could not save: {exc}", "toast error"

    @app.callback(Output("renaming", "data"), Output("deleting", "data"), *toast,
                  Output("switch-run", "data", allow_duplicate=True),
                  Input(action_id(ALL, ALL, ALL), "n_clicks"),
                  State("load-steps", "value"), State("experiment", "value"), prevent_initial_call=True)
    def act(clicks, more_steps, experiment):
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            return (no_update,) * 5  # buttons appearing with a re-rendered table
        try:
            action, name, version = model_action(ctx.triggered_id)
        except LLMBError as exc:
            return no_update, no_update, f"Could not do that: {exc}", "toast error", no_update
        if action == "rename":
            return name, None, no_update, no_update, no_update
        if action == "delete":
            return None, {"model": name, "version": version}, no_update, no_update, no_update
        if action == "delete-no":
            return no_update, None, no_update, no_update, no_update
        try:
            data.check_writable()
            if action == "delete-yes":
                return no_update, None, delete_version(library, name, version), "toast ok", no_update
            run_id, message = load_version(library, data.training_uri(), f"{name}/{version}", more_steps,
                                           data.experiment_to_train_in(experiment or data.experiment))
            return no_update, no_update, message, "toast ok", run_id
        except LLMBError as exc:
            verb = "delete" if action == "delete-yes" else "load"
            return no_update, None, f"Could not {verb} {name}/{version}: {exc}", "toast error", no_update

    @app.callback(Output("renaming", "data", allow_duplicate=True), *toast,
                  Input({"type": "rename-input", "model": ALL}, "n_submit"),
                  Input("rename-cancel", "n_clicks"),
                  State({"type": "rename-input", "model": ALL}, "value"), prevent_initial_call=True)
    def rename(submits, _cancel, values):
        if ctx.triggered_id == "rename-cancel":
            return None, no_update, no_update
        if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
            return no_update, no_update, no_update
        old = ctx.triggered_id.get("model")
        label = old if isinstance(old, str) and len(old) <= checks.MAX_NAME else shown(old)
        typed = [s["value"] for s in ctx.states_list[0] if s.get("id") == ctx.triggered_id]
        try:
            data.check_writable()
            check_name(old)
            new = checks.name(typed[0] if typed else None, "new model name")
            if new == old:
                return None, no_update, no_update
            library.rename(old, new)
        except LLMBError as exc:
            return no_update, f"Could not rename {label}: {exc}", "toast error"
        return None, f"Renamed {old} to {new}.", "toast ok"
