"""The Dash app: assembles the page from its panels and menus, each of which owns its layout
and its callbacks; only what belongs to the whole page lives here."""

from __future__ import annotations

from dash import Dash, Input, Output, State, dcc, html, no_update

from llmb_mlflow.run_layout import DEFAULT_EXPERIMENT

from . import http_guard, server_paths
from .address import TABS, query
from .data import ViewerData
from .panels import export
from .panels import (
    cinema, compare, controls, launches, models, playground, runs, scrubber, style_transfer, tour, training, watch,
)


def create_app(tracking_uri: str | None = None, run_id: str | None = None,
               experiment: str = DEFAULT_EXPERIMENT, url_base_pathname: str = "/",
               server=True, hosts: set[str] | None = None, **data_options) -> Dash:
    """The viewer; ``hosts``: the Host names it answers to (``http_guard.allowed_hosts``; None:
    any, for a server that checks them itself); ``data_options`` go to ViewerData
    (artifacts_destination, training_uri, read_only)."""
    data = ViewerData(tracking_uri, experiment, **data_options)
    app = Dash(__name__, title="LLMBreaker", url_base_pathname=url_base_pathname, server=server,
               suppress_callback_exceptions=False, update_title=None, use_async=False)
    http_guard.guard(app, hosts)
    server_paths.of_viewer(data).install(app.server, url_base_pathname)
    app.layout = _layout(experiment, data.read_only)
    _register(app)
    runs.register(app, data, run_id)
    scrubber.register(app)
    watch.register(app, data)
    cinema.register(app, data)
    compare.register(app, data)
    controls.register(app, data)
    launches.register(app, data)
    models.register(app, data)
    export.register(app, data)
    training.register(app, data)
    tour.register(app)
    playground.register(app, data)
    style_transfer.register(app, data)
    app.viewer_data = data
    return app


def _layout(experiment, read_only=False):
    # A read-only page keeps every component (callbacks name them) but hides those that write.
    return html.Div([
        dcc.Location(id="url", refresh=False),
        *runs.stores(),
        *compare.stores(),
        *tour.layout(),
        launches.layout(),
        html.Header([
            html.Div([  # what is shown: the run, and what its training is doing
                html.H1("LLMBreaker"),
                *runs.pickers(experiment),
                html.Div([html.Span("training", className="state-label"),
                          html.Span(id="status", className="badge"),
                          html.Span(id="progress", className="progress")], className="training-state"),
                html.Span("view only", className="badge view-only", hidden=not read_only,
                          title="this viewer shows runs and models but changes nothing"),
                tour.button(),
            ], className="header-row"),
            html.Div([  # what can be done to it
                controls.layout(),
                training.layout(),
                models.layout(),
                export.layout(),
                compare.menu(),
                html.Div([
                    html.Div(id="toast", className="toast", role="status"),
                    html.Div(id="error", className="error"),  # the run list could not be read
                    html.Div(id="run-error", className="error"),  # the shown run could not be read
                ], className="messages"),
            ], className="header-row actions"),
        ]),
        dcc.Tabs(id="tabs", value="watch", className="tabs", children=[
            dcc.Tab(label="Watch It Learn", value="watch", className="tab", selected_className="tab-selected",
                    children=watch.layout()),
            dcc.Tab(label="Attention Cinema", value="attention", id="tab-attention", className="tab",
                    selected_className="tab-selected", children=cinema.layout()),
            dcc.Tab(label="Token Playground", value="playground", id="tab-playground", className="tab",
                    selected_className="tab-selected", children=playground.layout()),
            dcc.Tab(label="Style Transfer", value="style", id="tab-style", className="tab",
                    selected_className="tab-selected", children=style_transfer.layout()),
        ]),
        scrubber.layout(),
    ], id="page", className="page read-only" if read_only else "page")


# A run started from a menu is shown at once; the menu it came from closes (the DOM's <details>
# state is not a Dash prop, so it is closed in the page).
CLOSE_MENUS_JS = """
function (run) {
    if (run) { document.querySelectorAll("details.menu[open]").forEach(m => { m.open = false; }); }
    return window.dash_clientside.no_update;
}"""


# An open menu can cover the header's message line: the open menu repeats the latest message
# (the one it most likely caused); a closed one forgets its last.
ECHO_MESSAGE_JS = """
function (message, className) {
    const shown = (className || "toast") + " menu-feedback";
    const echo = id => (document.getElementById(id) || {}).open ? [message, shown] : ["", "menu-feedback"];
    return [...echo("train-menu"), ...echo("models-menu")];
}"""


def _register(app: Dash) -> None:
    app.clientside_callback(CLOSE_MENUS_JS, Output("train-menu", "open"), Input("switch-run", "data"),
                            prevent_initial_call=True)
    app.clientside_callback(ECHO_MESSAGE_JS, Output("train-feedback", "children"),
                            Output("train-feedback", "className"), Output("models-feedback", "children"),
                            Output("models-feedback", "className"), Input("toast", "children"),
                            State("toast", "className"), prevent_initial_call=True)

    @app.callback(Output("tabs", "value"), Input("url", "search"), State("tabs", "value"))
    def tab_from_url(search, current):
        wanted = query(search).get("tab")
        return wanted if wanted in TABS and wanted != current else no_update
