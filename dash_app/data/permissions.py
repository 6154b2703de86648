"""Who may do what through the viewer: a read-only viewer changes nothing; otherwise ``access``
decides (READ, EDIT or MANAGE on a run's experiment, an experiment or a registered model); a
training starts only in an experiment that is LLMBreaker's."""

from __future__ import annotations

from llmb_mlflow.errors import LLMBError, shown
from llmb_mlflow.store.client import store_errors

from .. import checks
from ..access import EDIT, READ, Open
from .runs import TrainingRuns

READ_ONLY = "this viewer is read-only: change trainings and models with `llmb` or a viewer that is not"


class Permissions:
    """``experiment``: the viewer's own, where a training may start even before it exists."""

    def __init__(self, runs: TrainingRuns, access: Open, read_only: bool, experiment: str):
        self.runs, self.reader = runs, runs.reader
        self.access, self.read_only, self.experiment = access, read_only, experiment

    def check_writable(self) -> None:
        """Raise the one-line refusal if this viewer may change nothing (the hidden buttons of a
        read-only page can still be clicked by a script)."""
        if self.read_only:
            raise LLMBError(READ_ONLY)

    def refusal(self, need: str, doing: str, run_id: str | None = None, experiment_id: str | None = None,
                model: str | None = None) -> str | None:
        """Why the current user may not ``doing`` (``need``: READ, EDIT or MANAGE on the run's
        experiment, the experiment, or the registered model), or None if they may."""
        if self.read_only and need != READ:
            return READ_ONLY
        if model is not None:
            return self.access.refusal(need, "registered_model", model, lambda: model, doing)
        if experiment_id is None:
            experiment_id = self.runs.experiment_id(run_id)
        return self.access.refusal(need, "experiment", experiment_id,
                                   lambda: self.runs.experiment_name(experiment_id), doing)

    def require(self, need: str, doing: str, **of) -> None:
        reason = self.refusal(need, doing, **of)
        if reason:
            raise LLMBError(reason)

    def experiment_to_train_in(self, name) -> str:
        """An experiment a training from the viewer may log to, if the current user may start
        trainings there: this viewer's own, or an LLMBreaker experiment of the store that is not
        deleted."""
        self.check_writable()
        name = checks.argument(name, "experiment")
        with store_errors(self.reader.uri):
            found = self.reader.client.get_experiment_by_name(name)
        if name != self.experiment and (found is None or found.lifecycle_stage != "active"):
            raise LLMBError(f"no experiment named {shown(name)} in the store")
        if found is not None:
            self.require(EDIT, "start trainings in it", experiment_id=found.experiment_id)
            if name != self.experiment and not self._llmbreakers(found.experiment_id):
                raise LLMBError(f"the experiment {shown(name)} holds runs that are not LLMBreaker trainings; "
                                "train in one of LLMBreaker's")
        refused = self.access.training_refusal()
        if refused:
            raise LLMBError(refused)
        return name

    def _llmbreakers(self, experiment_id: str) -> bool:
        """Whether an experiment is LLMBreaker's to train in: it holds an LLMBreaker training run,
        or no run at all."""
        if self.reader.runs_of([experiment_id], 1):
            return True
        with store_errors(self.reader.uri):
            return not self.reader.client.search_runs([experiment_id], max_results=1)

    def refusal_to_train(self, experiment) -> str | None:
        """Why a training may not be started in ``experiment`` (the viewer's own if None) by the
        current user, or None."""
        try:
            self.experiment_to_train_in(experiment or self.experiment)
        except LLMBError as exc:
            return str(exc)
        return None
