"""What the viewer's answers never show a browser: the store's URI and this server's folders
(the store's, the artifacts', the uploads', the training logs', the working directory). A
message that names one (``no run with id … in sqlite:////srv/mlflow.db``) reaches the page
saying ``the store`` or ``(a path on the server)`` instead."""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

from llmb_mlflow.errors import redact

STORE = "the store"
SERVER_PATH = "(a path on the server)"
ANSWERS = ("_dash-update-component", "_dash-layout")


class ServerPaths:
    def __init__(self, uri: str, folders: list[str | None]):
        self.words = {}
        for shown_uri in (uri, redact(uri)):  # as our messages name it, then bare
            self.words.update({f"tracking store {shown_uri}": "the tracking store",
                               f"tracking server {shown_uri}": "the tracking server", shown_uri: STORE})
        if urlparse(uri).scheme == "sqlite":
            path = uri.split("sqlite:///", 1)[-1]
            if path and not path.startswith(":memory:"):
                folders = [os.path.abspath(path), os.path.dirname(os.path.abspath(path)), *folders]
        roots = {os.path.abspath(folder.removeprefix("file://")) for folder in folders
                 if folder and "://" not in folder.removeprefix("file://")}
        self.roots = sorted((root for root in roots if root.count(os.sep) >= 2), key=len, reverse=True)
        # Dash's JSON writes "/" as "\u002f"
        self.words.update({_escaped(word): said for word, said in list(self.words.items())})
        self.roots = sorted({*self.roots, *map(_escaped, self.roots)}, key=len, reverse=True)
        self._words = re.compile("|".join(re.escape(word) for word in sorted(self.words, key=len, reverse=True)))
        self._paths = re.compile(r"(?<![\w+/=\\.-])(?:" + "|".join(map(re.escape, self.roots)) + r")(?![\w.-])(?:(?:/|\\u002f)[^\s'\"\\,;)]*)*") \
            if self.roots else None

    def hide(self, text: str) -> str:
        if any(word in text for word in self.words):
            text = self._words.sub(lambda found: self.words[found.group(0)], text)
        if self._paths is not None and any(root in text for root in self.roots):
            text = self._paths.sub(SERVER_PATH, text)
        return text

    def install(self, server, prefix: str) -> None:
        """Hide them in every answer of the Dash app under ``prefix`` on the Flask app ``server``."""
        from flask import request

        @server.after_request
        def hide_in_answer(response):
            if (request.path.startswith(prefix) and request.path.endswith(ANSWERS)
                    and response.mimetype == "application/json" and not response.direct_passthrough):
                text = response.get_data(as_text=True)
                hidden = self.hide(text)
                if hidden is not text:
                    response.set_data(hidden)
            return response


def _escaped(text: str) -> str:
    return text.replace("/", "\\u002f")


def of_viewer(data) -> ServerPaths:
    from llmb_mlflow.launch.launcher import log_dir
    from llmb_mlflow.launch.uploads import upload_dir

    return ServerPaths(data.reader.uri, [data.reader.artifacts_destination, os.path.abspath("mlruns"),
                                         str(upload_dir()), log_dir(), os.getcwd(), os.path.expanduser("~")])
