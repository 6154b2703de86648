"""Every change the viewer makes to the store: commands to a run's training, and saves,
renames and deletes in the model library; each checked against what the current user may do."""

from __future__ import annotations

from llmb_mlflow.launch import limits
from llmb_mlflow.library import control
from llmb_mlflow.library.registry import ModelLibrary

from ..access import CREATE, EDIT, MANAGE
from .reads import Reads


class Changes:
    def __init__(self, reads: Reads, library: ModelLibrary):
        self.reads, self.permissions, self.library = reads, reads.permissions, library
        self.client = reads.reader.client

    def control(self, run_id: str, command: str) -> None:
        """Ask the run's training to pause, resume, step, stop or checkpoint (checked by
        ``control`` against the store: an LLMBreaker training that is running)."""
        self.permissions.require(EDIT, f"{command} this run", run_id=run_id)
        control.send(self.client, run_id, command)

    def mark_failed(self, run_id: str) -> None:
        self.permissions.require(EDIT, "mark this run failed", run_id=run_id)
        control.mark_failed(self.client, run_id)

    def save_model(self, run_id: str, name: str):
        """The saved version, or the step of the checkpoint the shown run's training was asked
        for, to save with ``finish_save`` once it is written."""
        self._may_save(run_id, name)
        step = self.library.checkpoint_for_saving(self.reads.check_run(run_id), name, limits.MAX_RUN_CHECKPOINTS)
        return self.library.save(run_id, name) if step is None else step

    def finish_save(self, run_id: str, name: str, step: int, asked_ms: int, token: str):
        self._may_save(run_id, name)
        return self.library.finish_saving(self.reads.check_run(run_id), name, step, asked_ms, token)

    def _may_save(self, run_id, name) -> None:
        """Refuse a save the current user may not make: EDIT on the run's experiment, and EDIT on
        the model if it exists, else a name not denied to them."""
        self.permissions.require(EDIT, "save a model from this run", run_id=run_id)
        if self.library.exists(name):
            self.permissions.require(EDIT, "add a version to it", model=name)
        else:
            self.permissions.require(CREATE, "create it", model=name)

    def rename_model(self, name: str, new_name: str) -> None:
        self.permissions.require(EDIT, "rename it", model=name)
        self.library.rename(name, new_name)
        self.permissions.access.model_changed("renamed", name, new_name)

    def check_deletable(self, name: str, version: str) -> None:
        """Refuse, before the page asks for a confirmation, a delete that would be refused."""
        self.permissions.require(MANAGE, "delete its versions", model=name)
        self.library.resolve(f"{name}/{version}")

    def delete_version(self, name: str, version: str) -> bool:
        self.permissions.require(MANAGE, "delete its versions", model=name)
        gone = self.library.delete(name, version)
        if gone:
            self.permissions.access.model_changed("deleted", name)
        return gone
