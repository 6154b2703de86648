"""Corpora uploaded through the viewer, kept for trainings by those who may start them."""

from __future__ import annotations

from llmb_mlflow.launch.uploads import Upload, store_upload

from .permissions import Permissions


class Uploads:
    def __init__(self, permissions: Permissions):
        self.permissions = permissions

    def keep_upload(self, filename: str, raw: bytes, experiment=None) -> Upload:
        """Keep a corpus for trainings in ``experiment`` (the viewer's own if None): only for
        users who may start them there."""
        self.permissions.experiment_to_train_in(experiment or self.permissions.experiment)
        return store_upload(filename, raw)
