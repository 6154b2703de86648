"""Who may do what in the viewer.

``Open``: whoever reaches the viewer may do everything it offers (``llmb dash``, ``mlflow server
--app-name llmbreaker``); a read-only viewer refuses every change before this is asked.

``SignedIn``: inside ``mlflow server --app-name llmbreaker-auth`` every request to the viewer is
signed in by MLflow's basic-auth app, as its UI and REST API are, and the viewer acts as that user,
following their MLflow permissions (admins may do anything):

=====================================================================  =============================
to                                                                     needs
=====================================================================  =============================
see an experiment's runs, show, compare or export a run, Try a model   READ on the run's experiment
pause, resume, step, stop or mark failed a run; save a model from it   EDIT on its experiment
start a training (New training, Load, Style Transfer), upload a corpus EDIT on the experiment, and
                                                                       being an admin or named in
                                                                       ``LLMB_TRAINERS``
see a model in the library, Load it                                    READ on the registered model
rename a model, add a version to it                                    EDIT on the registered model
create a model                                                         a name not DENY to the user
delete a version                                                       MANAGE on the registered model
=====================================================================  =============================

Starting trainings takes the server's cores, and any signed-in user may create an experiment
(and so hold EDIT on it): who may start them is the server admin's choice, ``LLMB_TRAINERS``
(see ``trainers_from``). A training started from the viewer logs through the server as the signed-in user: their
credentials go to the training process in its environment (``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``), never on its command line or in a log. Decisions are remembered
for ``TTL`` seconds per user and resource (scrubbing asks several times a second), so a changed
permission holds within that time.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from cachetools import TTLCache

from llmb_mlflow.store import compat as mlflow_compat
from llmb_mlflow.errors import LLMBError, shown

READ, EDIT, MANAGE = "READ", "EDIT", "MANAGE"
CREATE = "CREATE"  # a registered model of that name: allowed unless it is DENY
TTL = 5.0
KIND_WORDS = {"experiment": "experiment", "registered_model": "model"}
TRAINERS_SETTING = "LLMB_TRAINERS"
EVERYONE = "*"


def trainers_from(value: str | None) -> str | frozenset[str]:
    """Who may start trainings on a signed-in server's machine besides its admins, from
    ``value`` (else ``$LLMB_TRAINERS``): ``*`` for every user, or user names separated by
    commas; nobody else when empty or unset."""
    value = os.environ.get(TRAINERS_SETTING, "") if value is None else value
    if value.strip() == EVERYONE:
        return EVERYONE
    return frozenset(name.strip() for name in value.split(",") if name.strip())


class Open:
    """Everyone may do everything; nobody signs in."""

    signs_in = False

    def sign_in(self):
        return None

    def refusal(self, need: str, kind: str, key: str, label: Callable[[], str], doing: str) -> str | None:
        """Why the current user may not ``doing`` (``need`` on the experiment or registered model
        ``key``, named by ``label()``), or None if they may."""
        return None

    def training_refusal(self) -> str | None:
        """Why the current user may not start trainings on this machine at all, or None."""
        return None

    def owner(self) -> str | None:
        """Whose the trainings the current request starts are: only they follow them."""
        return None

    def credentials(self) -> dict[str, str | None]:
        """Environment variables a training started for the current user logs with (None:
        removed from the viewer's own)."""
        return {}

    def model_changed(self, change: str, name: str, new_name: str | None = None) -> None:
        """A registered model the current user ``created``, ``renamed`` or ``deleted``."""


class SignedIn(Open):
    """The signed-in user's MLflow permissions (see the module's doc)."""

    signs_in = True

    def __init__(self, ttl: float = TTL, trainers: str | None = None):
        self._decided = TTLCache(maxsize=4096, ttl=ttl)
        self._lock = threading.Lock()
        self.trainers = trainers_from(trainers)

    def sign_in(self):
        """A Flask ``before_request`` hook for the viewer's paths: MLflow's 401 unless the
        request signs in."""
        from flask import g

        found = mlflow_compat.signed_in_user()
        if not isinstance(found, str):
            return found
        g.llmb_user = found
        return None

    @staticmethod
    def user() -> str:
        from flask import g

        return g.llmb_user

    def permission(self, kind: str, key: str) -> mlflow_compat.Permission:
        user = self.user()
        with self._lock:
            found = self._decided.get((user, kind, key))
        if found is None:
            found = mlflow_compat.user_permission(user, kind, str(key))
            with self._lock:
                self._decided[(user, kind, key)] = found
        return found

    def refusal(self, need, kind, key, label, doing):
        permission = self.permission(kind, key)
        allowed = {READ: permission.can_read, EDIT: permission.can_update, MANAGE: permission.can_delete,
                   CREATE: permission.name != "DENY"}[need]
        if allowed:
            return None
        user = self.user()[:40]  # signed in: a name the server knows
        if need == READ:  # as MLflow's API: not a word about what they may not read
            return f"{user} may not {doing}: that needs READ, which {user} does not have"
        if need == CREATE:
            return f"{user} may not {doing}: the {KIND_WORDS[kind]} {shown(label())} is denied to {user}"
        return (f"{user} may not {doing}: that needs {need} on the {KIND_WORDS[kind]} {shown(label())}, "
                f"and {user} has {permission.name}")

    def owner(self):
        return self.user()

    def training_refusal(self):
        user = self.user()
        if self.trainers == EVERYONE or user in self.trainers:
            return None
        with self._lock:
            admin = self._decided.get((user, "admin", ""))
        if admin is None:
            admin = mlflow_compat.user_is_admin(user)
            with self._lock:
                self._decided[(user, "admin", "")] = admin
        if admin:
            return None
        return (f"{user[:40]} may not start trainings on this server: its admin names who may in "
                f"{TRAINERS_SETTING}")

    def credentials(self):
        from flask import request

        found = request.authorization
        if found is None or not found.password:
            raise LLMBError("this server signs people in without a password, so a training started here cannot "
                            "log as you; start it with `llmb train --tracking-uri` on your own machine")
        # None: not the server's own sign-in, if its environment has one
        return {"MLFLOW_TRACKING_USERNAME": found.username, "MLFLOW_TRACKING_PASSWORD": found.password,
                "MLFLOW_TRACKING_TOKEN": None}

    def model_changed(self, change, name, new_name=None):
        # made in the store directly, not through MLflow's REST API: its grants follow as they would
        mlflow_compat.auth_model_changed(change, name, new_name, self.user())
        with self._lock:  # and what was decided about those names before is forgotten
            for key in [k for k in self._decided if k[1] == "registered_model" and k[2] in (name, new_name)]:
                self._decided.pop(key, None)
