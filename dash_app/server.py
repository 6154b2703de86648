"""Serving the viewer with a production WSGI server (waitress), on 127.0.0.1 unless told."""

from __future__ import annotations

import logging

from .app import create_app


def serve(host: str = "127.0.0.1", port: int = 8050, tracking_uri: str | None = None,
          run_id: str | None = None, experiment: str = "llmbreaker", threads: int = 8) -> None:
    from waitress import serve as waitress_serve

    app = create_app(tracking_uri, run_id, experiment)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    waitress_serve(app.server, host=host, port=port, threads=threads, ident="llmbreaker")
