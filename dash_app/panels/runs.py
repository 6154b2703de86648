"""Which run the page shows: the experiment and run pickers, loading the chosen run, and
following it while it trains (incremental polls appended to the loss chart)."""

from __future__ import annotations

from dash import Input, Output, State, ctx, dcc, html, no_update

from llmb_mlflow.library import control
from llmb_mlflow.errors import LLMBError
from llmb_mlflow.run_layout import (
    FAILED, FAILURE_TAG, PARAM_N_HEAD, PARAM_N_LAYER, TOKENS, TOKENS_TAG, TRAIN_LOSS, TRAINER_STATE_TAG, VAL_LOSS,
)

from .. import checks, run_choice
from ..answers import answer
from ..access import READ
from ..address import query
from ..data.reads import CHART_POINTS
from . import compare
from ..figures import loss
from .controls import now_ms

POLL_MS = 1000  # with the trainer's 1 s flushes, new points show within ~2 s


def pickers(experiment: str) -> list:
    # One box that stays while the dropdowns inside redraw (the tour points at it).
    return [html.Div([dcc.Dropdown(id="experiment", clearable=False, className="experiment-picker",
                                   value=experiment, options=[experiment]),
                      dcc.Dropdown(id="run", placeholder="choose a run", clearable=False, className="run-picker")],
                     id="pickers", className="pickers")]


def stores() -> list:
    return [dcc.Store(id="run-state"),
            dcc.Store(id="switch-run"),  # a run just started from the viewer, to show at once
            dcc.Store(id="listed-for"),  # the experiment the run picker's list was made for
            dcc.Store(id="steps", data=[]),
            dcc.Interval(id="poll", interval=POLL_MS, disabled=True),
            dcc.Interval(id="runs-refresh", interval=5000)]


def register(app, data, default_run: str | None) -> None:
    @app.callback(Output("experiment", "options"), Input("runs-refresh", "n_intervals"))
    def list_experiments(_):
        try:
            return data.experiments()
        except LLMBError:
            return no_update

    # A run of another experiment (a link from MLflow's UI, a run started elsewhere) brings its
    # experiment into the picker with it; which run is shown is run_choice's decision.
    listed = dict(options=Output("run", "options"), run=Output("run", "value"), error=Output("error", "children"),
                  experiment=Output("experiment", "value"), switch=Output("switch-run", "data"),
                  listed_for=Output("listed-for", "data"))

    @app.callback(output=listed,
                  inputs=[Input("runs-refresh", "n_intervals"), Input("url", "search"), Input("experiment", "value"),
                          Input("switch-run", "data")],
                  state=[State("run", "value"), State("listed-for", "data")])
    def list_runs(_, search, experiment, switch_to, current, listed_for):
        page = run_choice.Page(frozenset(ctx.triggered_prop_ids.values()), experiment, listed_for,
                               checks.text(current, 300), checks.text(switch_to, 300), query(search).get("run"),
                               default_run)
        if page.settled:
            return answer(listed)
        try:
            name = checks.name(experiment, "experiment", optional=True)
            runs = data.runs(name)
        except LLMBError as exc:  # a bad name, a store that does not answer, an experiment not to be read
            return answer(listed, error=f"Cannot list runs: {exc}")
        wanted = page.wanted(runs[0].run_id if runs else None)
        moved, listed_for = no_update, experiment
        if wanted and wanted not in {r.run_id for r in runs}:
            try:
                home = data.experiment_of(wanted)
                if home != (name or data.experiment):
                    runs, moved, listed_for = data.runs(home), home, home
            except LLMBError:  # shown as it is: the run panel says what is wrong with it
                pass
        return answer(listed, options=run_choice.options(runs, wanted), error="", experiment=moved,
                      run=(wanted if wanted != page.current else no_update),
                      switch=(None if page.switch_to else no_update), listed_for=listed_for)

    loaded_outputs = dict(
        figure=Output("loss-chart", "figure"), state=Output("run-state", "data"), steps=Output("steps", "data"),
        ended=Output("poll", "disabled"), layers=Output("layer", "options"), heads=Output("head", "options"),
        layer=Output("layer", "value"), head=Output("head", "value"), error=Output("run-error", "children"))

    @app.callback(output=loaded_outputs,
                  inputs=[Input("run", "value"), Input("smoothing", "value"), Input("log-scale", "value"),
                          Input("runs-refresh", "n_intervals"), Input("compare", "data")],
                  state=[State("layer", "value"), State("head", "value"), State("run-state", "data")])
    def load_run(run_id, smoothing, log_scale, _refresh, compared, layer, head, loaded):
        log, compared = isinstance(log_scale, list) and "log" in log_scale, compare.compared(compared)
        drawn = f"{'log' if log else 'linear'} {checks.text(compared, 300)}"
        # The periodic refresh only redoes a chart that failed to load or was asked for
        # differently (a change whose own call a refresh superseded).
        shown = isinstance(loaded, dict) and loaded.get("run_id") == run_id and \
            loaded.get("drawn") == drawn and loaded.get("smoothing") == smoothing
        if ctx.triggered_id == "runs-refresh" and (not run_id or shown):
            return answer(loaded_outputs)
        if not run_id and ctx.triggered_id is None:  # the page's first call: no run chosen yet
            return answer(loaded_outputs)
        empty = loss.loss_figure([], [], [], [], None)
        if not run_id:
            return answer(loaded_outputs, figure=empty, state=None, steps=[], ended=True, layers=[], heads=[],
                          layer=0, head=0, error="")
        try:
            smoothing = checks.number(smoothing, "smoothing", 0, 0.99)
            layer = checks.whole(layer or 0, "layer", 0, 63)
            head = checks.whole(head or 0, "head", 0, 63)
            run = data.run(run_id)
            chart = data.chart(run_id, run)
            steps = data.snapshot_steps(run_id, run)
            facts = data.events(run_id, run)
        except LLMBError as exc:
            return answer(loaded_outputs, figure=empty, state=None, steps=[], ended=True,
                          error=f"Cannot show run {checks.label(run_id)}: {exc}")
        train_steps, train_values = chart["train"]
        state = {**_run_state(run, train_steps, train_values, chart["val"][0], smoothing), "drawn": drawn}
        if isinstance(loaded, dict) and loaded.get("run_id") == run.run_id:  # redrawn: the pace seen so far holds
            state.update({key: loaded.get(key) for key in ("pace_step", "pace_time")
                          if isinstance(loaded.get(key), int) and not isinstance(loaded.get(key), bool)})
        layers, heads = _count(run.params.get(PARAM_N_LAYER)), _count(run.params.get(PARAM_N_HEAD))
        other, problem = _other_chart(data, compared, run_id)
        events = loss.event_list(facts, state["first_step"], run.last_step)
        figure = loss.loss_figure(train_steps, train_values, *chart["val"], None, smoothing, log, other, events,
                                  unit="token" if run.tags.get(TOKENS_TAG) == TOKENS else "char.")
        failure = run.tags.get(FAILURE_TAG) if run.status == FAILED else None
        return answer(loaded_outputs, figure=figure, state=state, steps=steps, ended=run.ended,
                      layers=[{"label": str(i + 1), "value": i} for i in range(layers)],
                      heads=[{"label": str(i + 1), "value": i} for i in range(heads)],
                      layer=min(layer, layers - 1) if layers else None, head=min(head, heads - 1) if heads else None,
                      error=problem or (f"The training failed: {failure}" if failure else ""))

    followed = dict(extend=Output("loss-chart", "extendData"), state=Output("run-state", "data", allow_duplicate=True),
                    steps=Output("steps", "data", allow_duplicate=True),
                    ended=Output("poll", "disabled", allow_duplicate=True),
                    error=Output("run-error", "children", allow_duplicate=True))

    @app.callback(output=followed, inputs=[Input("poll", "n_intervals")],
                  state=[State("run-state", "data"), State("steps", "data"), State("run-error", "children")],
                  prevent_initial_call=True)
    def poll(_, state, steps, shown_error):
        if not state:
            return answer(followed, ended=True)
        try:
            state, steps = checks.run_state(state), checks.steps(steps)
        except LLMBError as exc:
            return answer(followed, ended=True, error=f"Cannot follow the run: {exc}")
        try:
            run = data.run(state["run_id"], need=None)
            refusal = data.refusal(READ, "see this run", experiment_id=run.experiment_id)
            if not refusal:
                train_steps, train_values = data.new_points(state["run_id"], TRAIN_LOSS, state["last_train"], run)
                val_steps, val_values = data.new_points(state["run_id"], VAL_LOSS, state["last_val"], run)
                new_steps = data.snapshot_steps(state["run_id"], run) if val_steps or run.ended else steps
        except LLMBError as exc:  # keep polling: the store may come back
            return answer(followed, error=f"Store unreachable, retrying: {exc}")
        if refusal:  # asking again will not change the answer: the page stops following the run
            return answer(followed, ended=True, error=f"Cannot follow the run: {refusal}")
        extend = no_update
        if train_steps or val_steps:
            smoothed = loss.smooth(train_values, state["smoothing"], state["ema"]) if train_steps else []
            kept = loss.thinned(train_steps, CHART_POINTS)
            extend = [{"x": [[train_steps[i] for i in kept]] * 2 + [val_steps],
                       "y": [[train_values[i] for i in kept], [float(smoothed[i]) for i in kept], val_values]},
                      [loss.RAW, loss.SMOOTH, loss.VAL]]
            state = {**state, "last_train": train_steps[-1] if train_steps else state["last_train"],
                     "last_val": val_steps[-1] if val_steps else state["last_val"],
                     "ema": float(smoothed[-1]) if train_steps else state["ema"]}
        if state.get("pace_step") is None and run.last_step > state["last_step"]:  # steps seen to go on
            state = {**state, "pace_step": run.last_step, "pace_time": now_ms()}
        state = {**state, "status": run.status, "last_step": run.last_step, "updated": now_ms(),
                 "trainer_state": run.tags.get(TRAINER_STATE_TAG),
                 "silence": control.silence(run.tags, run.status, run.start_time)}
        return answer(followed, extend=extend, state=state, steps=(new_steps if new_steps != steps else no_update),
                      ended=run.ended, error="" if shown_error else no_update)

def _count(param) -> int:
    """A run's layer or head count as its params say (anyone may write them): 0 (a recorded model
    that shows no attention) to 64; 1 when they say nothing readable."""
    return int(param) if isinstance(param, str) and param.isascii() and param.isdigit() \
        and len(param) <= 2 and 0 <= int(param) <= 64 else 1


def _run_state(run, train_steps, train_values, val_steps, smoothing) -> dict:
    ema = float(loss.smooth(train_values, smoothing)[-1]) if train_values else None
    return {"run_id": run.run_id, "status": run.status, "max_iters": run.max_iters,
            "start_time": run.start_time, "first_step": max(train_steps[0] - 1, 0) if train_steps else 0,
            "trainer_state": run.tags.get(TRAINER_STATE_TAG),
            "silence": control.silence(run.tags, run.status, run.start_time),
            "updated": now_ms(),
            "last_step": run.last_step, "last_train": train_steps[-1] if train_steps else None,
            "last_val": val_steps[-1] if val_steps else None, "ema": ema, "smoothing": smoothing}


def _other_chart(data, other: str | None, run_id: str) -> tuple[dict | None, str]:
    """The compared run's loss curves for the chart, or why they cannot be shown."""
    if not other or other == run_id:
        return None, ""
    try:
        run = data.run(data.check_run(other))
        return {"name": run.run_name, **data.chart(run.run_id, run)}, ""
    except LLMBError as exc:
        return None, f"Cannot compare: {exc}"
