"""The Export menu: download the shown run as its training movie (GIF, MP4), its metrics (CSV)
or an offline page (HTML), made on the server from what the run stored, as ``llmb export``
makes them."""

from __future__ import annotations

import threading

from dash import Input, Output, State, ctx, dcc, html

from llmb_mlflow.errors import LLMBError

from .. import checks
from ..answers import answer

# (format, what the menu calls it)
FORMATS = [("gif", "GIF movie"), ("mp4", "MP4 movie"), ("csv", "CSV: every metric, a row per step"),
           ("html", "HTML page that works offline")]
MAX_FRAMES = 300  # a movie from the viewer: at most this many snapshots, evenly spread
BUSY = "another export is being made on this server; try again when it is done"


def layout() -> html.Details:
    return html.Details([
        html.Summary("Export", id="export-summary", title="download the shown run as a movie, a table or a page"),
        html.Div([
            dcc.RadioItems(id="export-format", options=[{"label": label, "value": fmt} for fmt, label in FORMATS],
                           value="gif", labelStyle={"display": "block"}, style={"fontSize": "14px"}),
            html.Small(f"A movie has a frame per snapshot (at most {MAX_FRAMES}, evenly spread): the step, the "
                       "loss curve, the sample, the probability tower and the attention. For other frame "
                       "rates and single panels use llmb export.", className="hint"),
            html.Div(html.Button("Download", id="export-go", className="ctl-btn"), className="save-row"),
            html.Div(id="export-feedback", className="menu-feedback", role="status"),
            dcc.Download(id="export-download"),
        ], className="menu-body export-body"),
    ], id="export-menu", className="menu")


def register(app, data) -> None:
    one_at_a_time = threading.Lock()  # drawing a movie takes a core for seconds: never several at once

    exported = dict(file=Output("export-download", "data"), said=Output("export-feedback", "children"),
                    how=Output("export-feedback", "className"))

    @app.callback(output=exported, inputs=[Input("export-go", "n_clicks")],
                  state=[State("export-format", "value"), State("run", "value")],
                  running=[(Output("export-go", "disabled"), True, False),
                           (Output("export-go", "children"), "Making the file...", "Download")],
                  prevent_initial_call=True)
    def download(_, fmt, run_id):
        if ctx.triggered_id != "export-go":
            return answer(exported)
        if not one_at_a_time.acquire(blocking=False):
            return answer(exported, said=f"Could not export: {BUSY}.", how="menu-feedback toast error")
        try:
            fmt = checks.choice(fmt, "export format", [f for f, _ in FORMATS])
            name, content = data.export(run_id, fmt, MAX_FRAMES)
        except LLMBError as exc:
            return answer(exported, said=f"Could not export: {exc}", how="menu-feedback toast error")
        finally:
            one_at_a_time.release()
        return answer(exported, file=dcc.send_bytes(content, name),
                      said=f"Downloaded {name} ({len(content) / 2**20:.1f} MB).", how="menu-feedback toast ok")
