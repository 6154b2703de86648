"""The viewer's HTTP edge: the Host names it answers to, a size cap on what a request may send,
and a one-line refusal (not a traceback, not an HTML page) for what Dash itself cannot handle:
a callback request that is not plain JSON, an unknown callback, a file of Dash's own that does
not exist. Callbacks check their own values (``checks``); this is the net beneath them. Only the
viewer's own paths are touched, so MLflow's routes on a shared server keep theirs (and MLflow
checks Host names itself)."""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import socket

from dash.exceptions import DependencyException, PreventUpdate
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from llmb_mlflow.training.corpus import MAX_CORPUS_BYTES
from llmb_mlflow.errors import shown

# An upload is the largest thing the page sends: base64 makes 3 bytes into 4, plus JSON.
MAX_REQUEST_BYTES = MAX_CORPUS_BYTES * 4 // 3 + 2**20
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
log = logging.getLogger("llmbreaker.viewer")


def allowed_hosts(bound_host: str, extra: list[str] | tuple[str, ...] = ()) -> set[str] | None:
    """The Host names a stand-alone viewer bound to ``bound_host`` answers to, besides IP
    addresses (which a web page cannot re-point at this machine, as it can a name: DNS
    rebinding). None answers to every name (``*`` in ``extra``)."""
    given = {name.strip().lower().rstrip(".") for name in extra if name.strip()}
    if "*" in given:
        return None
    names = set(LOOPBACK_NAMES) | given
    if not _is_loopback(bound_host):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower(), bound_host.lower()}
    return names


def guard(app, hosts: set[str] | None = None) -> None:
    """Install the Host check (``hosts`` from ``allowed_hosts``; None: no check), the size cap
    and the net on a Dash app's own routes."""
    from flask import request

    prefix = app.config.routes_pathname_prefix
    server = app.server

    @server.before_request
    def check_request():
        if not request.path.startswith(prefix):
            return None
        request.max_content_length = MAX_REQUEST_BYTES
        if hosts is not None and not host_allowed(request.host, hosts):
            log.warning("refused a request for host %r", request.host[:100])
            return _refusal(f"this viewer does not answer to the host name {request.host[:100]!r}; "
                            "start it with --allowed-hosts NAME to allow it", 403)
        return None

    _wrap(server, prefix + "_dash-update-component", _refuse_what_dash_cannot_handle)
    _wrap(server, prefix + "_dash-component-suites/<string:package_name>/<path:fingerprinted_path>",
          _refuse_unknown_files)


def _wrap(server, endpoint: str, guarded) -> None:
    dispatch = server.view_functions[endpoint]

    @functools.wraps(dispatch)
    def guarded_view(*args, **kwargs):
        return guarded(dispatch, *args, **kwargs)

    server.view_functions[endpoint] = guarded_view


def _refuse_what_dash_cannot_handle(dispatch, *args, **kwargs):
    from flask import request

    problem = _body_problem()
    if problem:
        log.info("refused a viewer request: %s", problem[0])
        return _refusal(*problem)
    try:
        return dispatch(*args, **kwargs)
    except (PreventUpdate, HTTPException):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here is answered in one line
        log.warning("refused a viewer request: %s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        log.debug("the refused request's traceback", exc_info=True)
        return _refusal("the viewer could not handle this callback request "
                        f"(output: {shown(getattr(request, 'llmb_output', None))})", 400)


def _body_problem() -> tuple[str, int] | None:
    """Why a callback request's body is not what Dash reads (a JSON object, sent as is), or None."""
    from flask import request

    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return f"the request body is encoded (Content-Encoding: {shown(encoding)}); send plain JSON", 400
    if not request.is_json:
        return f"the request body must be JSON (Content-Type: {shown(request.mimetype or None)})", 400
    try:
        body = json.loads(request.get_data(cache=True))
    except RequestEntityTooLarge:
        return f"the request body is larger than {MAX_REQUEST_BYTES // 2**20} MB", 413
    except ValueError as exc:  # UnicodeDecodeError among them
        return f"the request body is not JSON ({' '.join(str(exc).split())[:120]})", 400
    except RecursionError:
        return "the request body is nested too deeply", 400
    if not isinstance(body, dict):
        return f"the request body must be a JSON object (got {shown(body, 40)})", 400
    request.llmb_output = body.get("output")  # named in a refusal
    return None


def _refuse_unknown_files(dispatch, package_name, fingerprinted_path):
    try:
        return dispatch(package_name, fingerprinted_path)
    except DependencyException:
        path = shown(f"{package_name}/{fingerprinted_path}", 120)
        log.info("refused a request for the unknown file %s", path)
        return _refusal(f"the viewer has no file {path}", 404)


def host_allowed(host_header: str, names: set[str]) -> bool:
    host = host_header.strip().lower()
    if host.startswith("["):  # [IPv6]:port
        return _is_ip(host[1:].split("]", 1)[0])
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return _is_ip(name) or name.rstrip(".") in names


def _refusal(message: str, status: int):
    return f"Bad request: {message}\n", status, {"Content-Type": "text/plain; charset=utf-8"}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() in LOOPBACK_NAMES
