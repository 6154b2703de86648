"""The store's LLMBreaker training runs, whatever id a page sent; the experiment of each run
seen is remembered, so checking a known run again (every scrub) costs no store read."""

from __future__ import annotations

import threading

from cachetools import LRUCache

from llmb_mlflow.library.reader import RunReader
from llmb_mlflow.library.control import not_a_training_run
from llmb_mlflow.run_layout import KIND_TAG, TRAINING_RUN
from llmb_mlflow.store.client import store_errors

from .. import checks


class TrainingRuns:
    def __init__(self, reader: RunReader):
        self.reader = reader
        self._experiments = LRUCache(4096)  # experiment ids, by run id
        self._lock = threading.Lock()

    def get(self, run_id):
        """The run ``run_id`` names, if it is an LLMBreaker training run."""
        run = self.reader.run(checks.run_id(run_id))
        if run.tags.get(KIND_TAG) != TRAINING_RUN:
            raise not_a_training_run(run_id)
        with self._lock:
            self._experiments[run_id] = run.experiment_id
        return run

    def known_experiment(self, run_id) -> str | None:
        """The experiment id of a training run seen before, or None."""
        with self._lock:
            return self._experiments.get(run_id) if isinstance(run_id, str) else None

    def experiment_id(self, run_id: str) -> str:
        found = self.known_experiment(run_id)
        return found if found is not None else self.get(run_id).experiment_id

    def experiment_name(self, experiment_id: str) -> str:
        with store_errors(self.reader.uri):
            return self.reader.client.get_experiment(experiment_id).name
