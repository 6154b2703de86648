"""Trainings started from the viewer, each in a process of its own: new ones, continued saved
versions, and following a start until its run exists."""

from __future__ import annotations

from typing import Callable

from llmb_mlflow.launch import launcher, limits
from llmb_mlflow.library.registry import ModelLibrary

from .. import checks
from ..access import READ
from .permissions import Permissions


class Launches:
    """``training_uri``: the tracking URI the trainings log to (a string, or a function of the
    current request); ``training_env``: environment variables they get (None: removed from the
    viewer's own); ``max_trainings``: how many may run at once."""

    def __init__(self, permissions: Permissions, library: ModelLibrary, training_uri: str | Callable[[], str],
                 training_env: dict[str, str | None], max_trainings: int):
        self.permissions, self.access, self.library = permissions, permissions.access, library
        self._training_uri, self.training_env, self.max_trainings = training_uri, training_env, max_trainings

    def training_uri(self) -> str:
        return self._training_uri() if callable(self._training_uri) else self._training_uri

    def start_training(self, args: list[str]) -> launcher.Started:
        """Start ``llmb ARGS``; its experiment comes from ``experiment_to_train_in``."""
        self.permissions.check_writable()
        return self._launch(args)

    def load_model(self, ref: str, more_steps: int, experiment) -> tuple[launcher.Started, object]:
        """Continue a saved version for ``more_steps`` in a new run of its own process."""
        self.permissions.check_writable()
        self.permissions.require(READ, "load it", model=checks.argument(ref, "model").rpartition("/")[0] or ref)
        args, version = limits.resume_args(self.library, ref, more_steps,
                                           self.permissions.experiment_to_train_in(experiment))
        return self._launch(args), version

    def _launch(self, args: list[str]) -> launcher.Started:
        return launcher.start(args, self.training_uri(), env={**self.training_env, **self.access.credentials()},
                              at_most=self.max_trainings, owner=self.access.owner())

    def follow_launch(self, launch_id) -> str | None:
        """``launcher.state`` of a training the current user started from a viewer of this
        machine: nothing the request says names a process, and a read-only viewer, which starts
        none, follows none."""
        self.permissions.check_writable()
        return launcher.state(launch_id, owner=self.access.owner())
