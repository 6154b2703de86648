"""Serving the viewer with a production WSGI server (waitress), on 127.0.0.1 unless told."""

from __future__ import annotations

import logging
import os

from llmb_mlflow.run_layout import DEFAULT_EXPERIMENT

from . import http_guard
from .app import create_app


def make_server(host: str = "127.0.0.1", port: int = 8050, tracking_uri: str | None = None,
                run_id: str | None = None, experiment: str = DEFAULT_EXPERIMENT, threads: int = 8,
                read_only: bool = False, allowed_hosts: list[str] | tuple[str, ...] = (),
                max_trainings: int | None = None):
    """A bound, listening server (call ``.run()`` to serve, ``.close()`` to stop), answering
    to IP addresses, this machine's names and ``allowed_hosts`` (``*``: any name)."""
    from waitress import create_server

    app = create_app(tracking_uri, run_id, experiment, read_only=read_only, max_trainings=max_trainings,
                     hosts=http_guard.allowed_hosts(host, allowed_hosts), training_env=fail_fast_reads())
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # waitress refuses a larger body before reading it
    return create_server(app.server, host=host, port=port, threads=threads, ident="llmbreaker",
                         max_request_body_size=http_guard.MAX_REQUEST_BYTES)


FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "AWS_MAX_ATTEMPTS": "2"}


def fail_fast_reads() -> dict[str, str | None]:
    """Make this process's reads of a tracking server (or an S3 artifact store) that is down fail
    within seconds instead of MLflow's minutes of retries (botocore's 12 s), so the page can say
    so at once; the next poll tries again.
    One retry is kept, made at once (urllib3 waits only before the second): a pooled connection
    that the server closed while it was idle is then reopened instead of failing the read.

    A setting the user made is kept. Returns the settings as they were (None: unset), for the
    trainings the viewer starts: they keep MLflow's patient retries and long uploads."""
    before = {name: os.environ.get(name) for name in FAIL_FAST}
    for name, value in FAIL_FAST.items():
        os.environ.setdefault(name, value)
    return before
