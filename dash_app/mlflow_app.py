"""``mlflow server --app-name llmbreaker``: MLflow's UI and the viewer on one port.

The ``mlflow.app`` entry point names ``create_app``, a factory in the style of MLflow's own
``basic-auth`` app: it mounts the viewer under ``/llmb/`` on MLflow's Flask app and hands it
back (wrapped in MLflow's FastAPI app when uvicorn serves it). Inside the server the viewer reads
the backend store and the served-artifacts folder directly; trainings it starts log through the
address the server's socket has, like any other client. With ``LLMB_READ_ONLY=true`` in the server's
environment the viewer only shows (anyone who can reach the server could otherwise start
trainings on its machine).
"""

from __future__ import annotations

import os

from llmb_mlflow.store import compat as mlflow_compat
from llmb_mlflow.run_layout import VIEWER_PATH

from .access import SignedIn
from .app import create_app as create_viewer


def read_only_from_env() -> bool:
    """LLMB_READ_ONLY: anything but unset, empty, 0, false, no or off means read-only (a typo
    must not open the server up)."""
    return os.environ.get("LLMB_READ_ONLY", "").strip().lower() not in ("", "0", "false", "no", "off")


def local_address(environ: dict) -> str:
    """The address this request reached the server at, from the server's socket, never from
    the request's Host header (which the client writes: trainings would log wherever it says)."""
    sock = environ.get("gunicorn.socket")  # gunicorn fills SERVER_NAME from the Host header
    host, port = sock.getsockname()[:2] if sock is not None else (environ["SERVER_NAME"], environ["SERVER_PORT"])
    host = f"[{host}]" if ":" in str(host) else host
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}:{port}"


def create_app():
    settings = mlflow_compat.server_settings()
    flask_app = mlflow_compat.server_flask_app()
    _viewer(settings, flask_app)
    return mlflow_compat.asgi_app(flask_app) if settings.asgi else flask_app


def create_auth_app():
    """``mlflow server --app-name llmbreaker-auth``: MLflow's basic-auth app, configured as MLflow
    documents it (``MLFLOW_AUTH_CONFIG_PATH``, ``MLFLOW_FLASK_SERVER_SECRET_KEY``, the first
    admin's password), with the viewer under ``/llmb/``. The viewer is a Flask app of its own that
    takes its requests before MLflow's app sees them: each is signed in by MLflow's auth app (the
    browser's one sign-in serves both), and the viewer acts as that user (``access``)."""
    from flask import Flask

    settings = mlflow_compat.server_settings()
    flask_app = mlflow_compat.server_flask_app()
    viewer_server = Flask("llmbreaker")
    mlflow_compat.server_security(viewer_server)  # as MLflow's own routes: Host names, framing, CORS
    access = SignedIn()
    viewer_server.before_request(access.sign_in)  # then nothing of the viewer answers a stranger
    prefix = _viewer(settings, viewer_server, access=access)
    flask_app.wsgi_app = by_path(prefix, viewer_server.wsgi_app, flask_app.wsgi_app)
    return mlflow_compat.auth_app(flask_app)


def by_path(prefix: str, viewer, everything_else):
    """A WSGI app passing requests under ``prefix`` to ``viewer``, the rest to ``everything_else``."""
    def route(environ, start_response):
        target = viewer if environ.get("PATH_INFO", "").startswith(prefix) else everything_else
        return target(environ, start_response)
    return route


def _viewer(settings, server, **options) -> str:
    """Mount the viewer on the Flask app ``server``; its path."""
    from flask import request

    def own_address() -> str:
        return local_address(request.environ) + settings.static_prefix

    path = settings.static_prefix + VIEWER_PATH
    create_viewer(settings.backend_store_uri, url_base_pathname=path, server=server, training_uri=own_address,
                  read_only=read_only_from_env(), artifacts_destination=settings.artifacts_destination, **options)
    return path
