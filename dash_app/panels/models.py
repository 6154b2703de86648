"""The model library menu: the registered LLMBreaker models, and saving, renaming, deleting and
loading them (a load resumes training in a new run, which the viewer then shows)."""

from __future__ import annotations

import re
import secrets
from typing import Callable

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow.errors import LLMBError, shown
from llmb_mlflow.library.registry import check_name
from llmb_mlflow.run_layout import PARAM_DATASET, PARAM_PRESET

from .. import checks
from ..access import EDIT, MANAGE
from ..confirm import Confirmations
from ..address import address
from ..answers import answer, toast
from . import launches
from .controls import now_ms

DEFAULT_MORE_STEPS = 1000
MAX_MORE_STEPS = 10**9
ACTIONS = ("rename", "delete", "delete-no", "delete-yes", "load")
RIGHTS = {"rename": (EDIT, "rename it"), "delete": (MANAGE, "delete its versions")}  # (needs, doing)
HEADERS = ("model", "version", "step", "train loss", "val loss", "aliases", "dataset", "")


def action_id(action: str, name: str, version: str = "") -> dict:
    return {"type": "model-action", "action": action, "model": name, "version": version}


def models_table(listing, renaming: str | None = None, deleting: dict | None = None,
                 refused: Callable[[str, str], str | None] = lambda name, action: None) -> list:
    """``listing``: (name, versions) pairs as ``ModelLibrary.models`` returns them;
    ``renaming``: the model whose name is being edited; ``deleting``: the version awaiting a yes;
    ``refused(name, action)``: why the user may not rename, delete or load that model, if so."""
    if not listing:
        return [html.Div("No saved models yet.", className="empty")]
    rows = [html.Tr([html.Th(h) for h in HEADERS])]
    for name, versions in listing:
        for i, v in enumerate(versions):
            rows.append(html.Tr([
                html.Td(_name_cell(name, renaming, refused(name, "rename")) if i == 0 else ""),
                html.Td(v.version),
                html.Td(v.step), html.Td(_fmt(v.train_loss)), html.Td(_fmt(v.val_loss)),
                html.Td(", ".join(v.aliases) or "-"), html.Td(v.dataset),
                html.Td([html.A("Try", href=address(v.run_id, "playground", v.step), className="ctl-btn try",
                                title="write with this model in the Token Playground"),
                         _version_actions(name, v.version, len(versions), deleting, refused(name, "delete"),
                                          refused(name, "load"))]),
            ], className="model-row", **{"data-model": name, "data-version": v.version}))
    return [html.Table(rows, className="models-table")]


def _name_cell(name: str, renaming: str | None, refusal: str | None = None):
    if name == renaming:
        return html.Span([
            dcc.Input(id={"type": "rename-input", "model": name}, value=name, autoFocus=True,
                      className="rename-input", debounce=False),
            html.Small(" Enter renames, Escape cancels", className="hint")])
    return html.Span([html.Span(name, className="model-name"),
                      html.Button("✎", id=action_id("rename", name), className="link-btn rename writes",
                                  title=refusal or f"rename {name}", disabled=bool(refusal))])


def _version_actions(name: str, version: str, count: int, deleting: dict | None, refusal: str | None = None,
                     load_refusal: str | None = None):
    if isinstance(deleting, dict) and (deleting.get("model"), deleting.get("version")) == (name, version):
        what = f"{name} (its only version)" if count == 1 else f"version {version} of {name}"
        return html.Span([f"Delete {what}? ",
                          html.Button("Delete", id=action_id("delete-yes", name, version),
                                      className="ctl-btn danger delete-yes"),
                          html.Button("Cancel", id=action_id("delete-no", name, version),
                                      className="ctl-btn delete-no")], className="confirm")
    return html.Span(className="writes", children=[
        html.Button("Load", id=action_id("load", name, version), className="ctl-btn load",
                    title=load_refusal or "continue training this checkpoint in a new run", disabled=bool(load_refusal)),
        html.Button("Delete", id=action_id("delete", name, version), className="ctl-btn delete",
                    title=refusal or "delete this version (the checkpoint stays in its run)", disabled=bool(refusal)),
    ])


def checkpoints_line(checkpoints) -> str:
    """The shown run's checkpoints in one line: how many, and their steps."""
    if not checkpoints:
        return "The shown run has no checkpoint yet."
    steps = [f"{c.step:,}" for c in checkpoints]
    shown = ", ".join(steps if len(steps) <= 6 else [*steps[:3], "…", *steps[-2:]])
    return (f"The shown run has {len(steps)} checkpoint{'s' if len(steps) > 1 else ''} "
            f"(step {shown}), each an MLflow logged model.")


def suggested_name(run) -> str:
    return f"{run.params.get(PARAM_PRESET, 'model')}-{run.params.get(PARAM_DATASET, 'corpus')}".replace(".", "-")


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
            html.Div(id="run-checkpoints", className="run-checkpoints"),
            html.Div(id="models-list"),
            html.Button(id="rename-cancel", hidden=True),  # Escape in the rename field clicks it
            dcc.Store(id="renaming"), dcc.Store(id="deleting"), dcc.Store(id="pending-save"),
            dcc.Interval(id="save-poll", interval=500, disabled=True),
        ], className="menu-body"),
    ], id="models-menu", className="menu")


def model_action(which) -> tuple[str, str, str]:
    """(action, model name, version) of a clicked table button's id, as a stranger might send it."""
    if not isinstance(which, dict):
        raise LLMBError(f"unknown model action {shown(which)}")
    action = checks.choice(which.get("action"), "model action", ACTIONS)
    name = check_name(which.get("model"))
    version = which.get("version")
    if action != "rename" and not (isinstance(version, str) and re.fullmatch(r"[0-9]{1,9}", version)):
        raise LLMBError(f"model version {shown(version)} is not a version number")
    return action, name, version


def register(app, data) -> None:
    confirmations = Confirmations()

    @app.callback(Output("models-list", "children"), Input("models-summary", "n_clicks"),
                  Input("toast", "children"), Input("renaming", "data"), Input("deleting", "data"),
                  State("experiment", "value"))
    def list_models(_clicks, _toast, renaming, deleting, experiment):
        def refused(name, action):
            if action == "load":  # a new run in the shown experiment
                return load_refusal
            return data.refusal(*RIGHTS[action], model=name)

        try:
            load_refusal = data.refusal_to_train(experiment)
            return models_table(data.models(), renaming, deleting, refused=refused)
        except LLMBError as exc:
            return [html.Div(f"Could not list models: {exc}", className="error")]

    @app.callback(Output("run-checkpoints", "children"), Input("models-summary", "n_clicks"),
                  Input("toast", "children"), State("run", "value"))
    def list_checkpoints(_clicks, _toast, run_id):
        if not run_id:
            return ""
        try:
            return checkpoints_line(data.checkpoints(run_id))
        except LLMBError:
            return ""

    @app.callback(Output("save-model", "disabled"), Output("save-model", "title"), Input("run", "value"))
    def may_save(run_id):
        try:
            refusal = data.refusal(EDIT, "save a model from this run", run_id=run_id) if run_id else None
        except LLMBError as exc:
            refusal = str(exc)
        # a read-only page hides the button; a script clicking it anyway hears the server's refusal
        return bool(refusal) and not data.read_only, refusal or "register the shown run's latest checkpoint in the model library"

    # A suggestion, not a value: what the user types is never mixed with a late suggestion.
    @app.callback(Output("save-name", "placeholder"), Input("run", "value"))
    def suggest(run_id):
        if not run_id:
            return no_update
        try:
            return suggested_name(data.run(run_id))
        except LLMBError:
            return no_update

    @app.callback(Output("pending-save", "data"), Input("save-model", "n_clicks"),
                  State("save-name", "value"), State("run-state", "data"), prevent_initial_call=True)
    def save(_, name, state):
        if not state or ctx.triggered_id != "save-model":
            return no_update
        try:
            data.check_writable()
            run_id = checks.run_state(state)["run_id"]
            typed = name.strip() if isinstance(name, str) else name
            name = check_name(typed or suggested_name(data.run(run_id)))  # empty: the suggestion shown
            version = data.save_model(run_id, name)
            if isinstance(version, int):  # a checkpoint's step: the page waits for it, no server thread does
                toast(f"Asked the training for a checkpoint; it is saved as {name} once written.")
                return {"run_id": run_id, "name": name, "step": version, "since": now_ms(),
                        "token": secrets.token_hex(16)}
        except LLMBError as exc:
            toast(f"Could not save: {exc}", ok=False)
            return no_update
        toast(version.saved_words)
        return no_update

    polled = dict(off=Output("save-poll", "disabled"), waiting=Output("pending-save", "data", allow_duplicate=True))

    @app.callback(output=polled, inputs=[Input("save-poll", "n_intervals"), Input("pending-save", "data")],
                  prevent_initial_call=True)
    def finish_save(_, waiting):
        if not waiting:
            return answer(polled, off=True)
        try:
            waiting = checks.pending_save(waiting)
            version = data.finish_save(waiting["run_id"], check_name(waiting["name"]), waiting["step"],
                                       waiting["since"], waiting["token"])
            if version is None:
                return answer(polled, off=False)  # not written (or saved) yet: poll on
        except LLMBError as exc:
            toast(f"Could not save: {exc}", ok=False)
            return answer(polled, off=True, waiting=None)
        toast(version.saved_words)
        return answer(polled, off=True, waiting=None)

    acted = dict(renaming=Output("renaming", "data"), deleting=Output("deleting", "data"),
                 launch=Output("pending-launch", "data", allow_duplicate=True))

    @app.callback(output=acted, inputs=[Input(action_id(ALL, ALL, ALL), "n_clicks")],
                  state=[State("load-steps", "value"), State("experiment", "value"), State("deleting", "data")],
                  prevent_initial_call=True)
    def act(clicks, more_steps, experiment, deleting):
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            return answer(acted)  # buttons appearing with a re-rendered table
        try:
            action, name, version = model_action(ctx.triggered_id)
        except LLMBError as exc:
            toast(f"Could not do that: {exc}", ok=False)
            return answer(acted)
        if action == "rename":
            return answer(acted, renaming=name, deleting=None)
        if action == "delete-no":
            return answer(acted, deleting=None)
        try:
            data.check_writable()
            if action == "delete":
                data.check_deletable(name, version)
                token = confirmations.token(data.access.owner(), "delete", name, version)
                return answer(acted, renaming=None, deleting={"model": name, "version": version, "token": token})
            if action == "delete-yes":
                asked = deleting if isinstance(deleting, dict) else {}
                if (asked.get("model"), asked.get("version")) != (name, version):
                    raise LLMBError("this was not confirmed: click it again and confirm")
                confirmations.check(asked.get("token"), data.access.owner(), "delete", name, version)
                gone = data.delete_version(name, version)
                toast(f"Deleted model {name}." if gone else f"Deleted version {version} of {name}.")
                return answer(acted, deleting=None)
            more = checks.whole(more_steps, "the number of more steps to train", 1, MAX_MORE_STEPS)
            started, saved = data.load_model(f"{name}/{version}", more, experiment or data.experiment)
            done = (f"Loaded {saved.ref} (step {saved.step}); training on to step {saved.step + more} "
                    "in a new run.")
            toast(f"Loading {name}/{version}: starting its training...")
            return answer(acted, launch=launches.pending(started, done, f"Could not load {name}/{version}"))
        except LLMBError as exc:
            verb = "load" if action == "load" else "delete"
            toast(f"Could not {verb} {name}/{version}: {exc}", ok=False)
            return answer(acted, deleting=None)

    @app.callback(Output("renaming", "data", allow_duplicate=True),
                  Input({"type": "rename-input", "model": ALL}, "n_submit"),
                  Input("rename-cancel", "n_clicks"),
                  State({"type": "rename-input", "model": ALL}, "value"), prevent_initial_call=True)
    def rename(submits, _cancel, values):
        if ctx.triggered_id == "rename-cancel":
            return None
        if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
            return no_update
        old = ctx.triggered_id.get("model")
        fields = ctx.states_list[0] if ctx.states_list and isinstance(ctx.states_list[0], list) else []
        typed = [f.get("value") for f in fields if isinstance(f, dict) and f.get("id") == ctx.triggered_id]
        label = shown(old)
        try:
            label = check_name(old)
            data.check_writable()
            new = checks.name(typed[0] if typed else None, "new model name")
            if new == old:
                return None
            data.rename_model(old, new)
        except LLMBError as exc:
            toast(f"Could not rename {label}: {exc}", ok=False)
            return no_update
        toast(f"Renamed {old} to {new}.")
        return None
