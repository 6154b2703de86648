"""The viewer's HTTP edge: the Host names it answers to, a size cap on what a request may send,
and a one-line refusal (not a traceback) for a callback request that Dash itself cannot handle:
an unknown callback, a malformed body. Callbacks check their own values (``checks``); this is
the net beneath them. Only the viewer's own paths are touched, so MLflow's routes on a shared
server keep theirs (and MLflow checks Host names itself)."""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket

from dash.exceptions import PreventUpdate
from werkzeug.exceptions import HTTPException

from llmb_mlflow.corpus import MAX_CORPUS_BYTES

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

    endpoint = prefix + "_dash-update-component"
    dispatch = server.view_functions[endpoint]

    @functools.wraps(dispatch)
    def refuse_what_dash_cannot_handle(*args, **kwargs):
        try:
            return dispatch(*args, **kwargs)
        except (PreventUpdate, HTTPException):
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here is answered in one line
            log.warning("refused a viewer request: %s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
            log.debug("the refused request's traceback", exc_info=True)
            return _refusal("the viewer could not handle this request", 400)

    server.view_functions[endpoint] = refuse_what_dash_cannot_handle


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
