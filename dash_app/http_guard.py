"""The viewer's HTTP edge: a size cap on what a request may send, and a one-line refusal (not
a traceback) for a callback request that Dash itself cannot handle: an unknown callback, a
malformed body. Callbacks check their own values (``checks``); this is the net beneath them.
Only the viewer's own paths are touched, so MLflow's routes on a shared server keep theirs."""

from __future__ import annotations

import functools
import logging

from dash.exceptions import PreventUpdate
from werkzeug.exceptions import HTTPException

from llmb_mlflow.corpus import MAX_CORPUS_BYTES

# An upload is the largest thing the page sends: base64 makes 3 bytes into 4, plus JSON.
MAX_REQUEST_BYTES = MAX_CORPUS_BYTES * 4 // 3 + 2**20
log = logging.getLogger("llmbreaker.viewer")


def guard(app) -> None:
    """Install the cap and the net on a Dash app's own routes."""
    from flask import request

    prefix = app.config.routes_pathname_prefix
    server = app.server

    @server.before_request
    def cap_request_size():
        if request.path.startswith(prefix):
            request.max_content_length = MAX_REQUEST_BYTES

    endpoint = prefix + "_dash-update-component"
    dispatch = server.view_functions[endpoint]

    @functools.wraps(dispatch)
    def refuse_what_dash_cannot_handle(*args, **kwargs):
        try:
            return dispatch(*args, **kwargs)
        except (PreventUpdate, HTTPException):
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here is answered in one line
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            log.warning("refused a viewer request: %s", message)
            log.debug("the refused request's traceback", exc_info=True)
            return f"Bad request: {message}\n", 400, {"Content-Type": "text/plain; charset=utf-8"}

    server.view_functions[endpoint] = refuse_what_dash_cannot_handle
