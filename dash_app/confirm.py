"""Confirmations a page must ask the server for before a destructive change: a token the server
signs for one user, one thing and a few minutes, so a request that skips the confirm step (a
script posting the final click directly) changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time

from llmb_mlflow.errors import LLMBError

VALID_FOR = 600.0  # seconds between the first click and the confirming one


class Confirmations:
    """``secret``: what signs the tokens; MLflow's ``MLFLOW_FLASK_SERVER_SECRET_KEY`` when set (so
    every worker of a server knows it), else one of this process's own."""

    def __init__(self, secret: str | bytes | None = None):
        secret = secret or os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or secrets.token_bytes(32)
        self._secret = secret.encode() if isinstance(secret, str) else secret

    def token(self, owner: str | None, *what: str) -> str:
        """A token confirming ``what`` (e.g. "delete", a model, a version) for ``owner``."""
        issued = str(int(time.time()))
        return f"{issued}.{self._sign(issued, owner, what)}"

    def check(self, token, owner: str | None, *what: str) -> None:
        """Refuse unless ``token`` was issued for exactly this ``owner`` and ``what``, recently."""
        issued, _, signature = token.partition(".") if isinstance(token, str) else ("", "", "")
        if not (issued.isascii() and issued.isdigit() and len(issued) < 12
                and hmac.compare_digest(signature, self._sign(issued, owner, what))):
            raise LLMBError("this was not confirmed: click it again and confirm")
        if time.time() - int(issued) > VALID_FOR:
            raise LLMBError("the confirmation has expired: click it again and confirm")

    def _sign(self, issued: str, owner: str | None, what: tuple[str, ...]) -> str:
        message = "\0".join((issued, owner or "", *what)).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
