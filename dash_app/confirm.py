"""Confirmations a page must ask the server for before a destructive change: a token the server
signs for one user, one thing and a few minutes, so a request that skips the confirm step (a
script posting the final click directly) changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time

from filelock import FileLock

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.paths import user_data_dir

VALID_FOR = 600.0  # seconds between the first click and the confirming one


class Confirmations:
    """``secret``: what the signing key is made from; else MLflow's
    ``MLFLOW_FLASK_SERVER_SECRET_KEY`` when set, else a secret this user's viewers keep in a file
    only they can read: every worker of a server signs and checks alike."""

    def __init__(self, secret: str | bytes | None = None):
        secret = secret or os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or kept_secret()
        secret = secret.encode() if isinstance(secret, str) else secret
        self._secret = hmac.new(secret, b"llmbreaker confirmations", hashlib.sha256).digest()

    def token(self, owner: str | None, *what: str) -> str:
        """A token confirming ``what`` (e.g. "delete", a model, a version) for ``owner``."""
        issued = str(int(time.time()))
        return f"{issued}.{self._sign(issued, owner, what)}"

    def check(self, token, owner: str | None, *what: str) -> None:
        """Refuse unless ``token`` was issued for exactly this ``owner`` and ``what``, recently."""
        issued, _, signature = token.partition(".") if isinstance(token, str) and token.isascii() else ("", "", "")
        if not (issued.isdigit() and len(issued) < 12
                and hmac.compare_digest(signature, self._sign(issued, owner, what))):
            raise LLMBError("this was not confirmed: click it again and confirm")
        if time.time() - int(issued) > VALID_FOR:
            raise LLMBError("the confirmation has expired: click it again and confirm")

    def _sign(self, issued: str, owner: str | None, what: tuple[str, ...]) -> str:
        message = "\0".join((issued, owner or "", *what)).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def kept_secret() -> bytes:
    """This user's viewers' own secret, made once (``$XDG_DATA_HOME/llmbreaker/viewer/secret``,
    mode 0600)."""
    folder = user_data_dir("viewer", "LLMB_VIEWER_DIR")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "secret"
    with FileLock(str(path) + ".lock"):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "r+b") as file:
            found = file.read()
            if len(found) < 32:  # new, or cut short
                found = secrets.token_bytes(32)
                file.seek(0)
                file.truncate()
                file.write(found)
    return found
