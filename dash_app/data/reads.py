"""What the viewer reads (through ``RunReader``, cached there and here), each read checked
against what the current user may see."""

from __future__ import annotations

import threading

import numpy as np
from cachetools import LRUCache, cachedmethod

from llmb_mlflow.errors import LLMBError
from llmb_mlflow.launch import limits
from llmb_mlflow.library.reader import RunSummary
from llmb_mlflow.library.registry import ModelLibrary
from llmb_mlflow.numbers import whole_number
from llmb_mlflow.run_layout import (
    CHECKPOINT_MODEL_FILE, MODEL_VERSION_TAG, PARAM_WARMUP, PAUSED, TRAIN_LOSS, VAL_LOSS,
)
from llmb_mlflow.store.client import store_errors
from llmb_mlflow.training.shapes import checkpoint_bytes

from .. import checks
from ..access import READ
from .permissions import Permissions

CHART_POINTS = 2000
COMPARABLE_RUNS = 1000  # the Compare menu's list, newest first
ENTROPY_POINTS = 500  # per head: a 36-head run's chart stays light however many snapshots


class Reads:
    def __init__(self, permissions: Permissions, library: ModelLibrary, cache_size: int = 4096):
        self.permissions, self.runs_seen, self.reader = permissions, permissions.runs, permissions.reader
        self.library = library
        self._samples = LRUCache(cache_size)  # the text of a snapshot's sample, by run and step
        self._lock = threading.Lock()

    # -- experiments and runs --------------------------------------------------------------

    def experiments(self) -> list[str]:
        """Names of the store's active experiments the current user may read."""
        return [name for _, name in self._readable_experiments()]

    def comparable_runs(self) -> list[tuple[str, RunSummary]]:
        """(experiment name, run): the newest COMPARABLE_RUNS training runs of all experiments
        the current user may read, found in one search whatever the number of experiments."""
        readable = dict(self._readable_experiments())
        return [(readable[run.experiment_id], run) for run in self.reader.runs_of(list(readable), COMPARABLE_RUNS)]

    def _readable_experiments(self) -> list[tuple[str, str]]:
        return [(experiment_id, name) for experiment_id, name in self.reader.experiment_list()
                if not self.permissions.refusal(READ, "see it", experiment_id=experiment_id)]

    def runs(self, experiment=None):
        """The training runs of ``experiment`` (the viewer's own if None), newest first."""
        name = checks.name(experiment, "experiment", optional=True) or self.permissions.experiment
        if self.permissions.access.signs_in:
            with store_errors(self.reader.uri):
                found = self.reader.client.get_experiment_by_name(name)
            if found is not None:
                self.permissions.require(READ, "see its runs", experiment_id=found.experiment_id)
        return self.reader.runs(name)

    def run(self, run_id, need: str | None = READ):
        """An LLMBreaker training run of the store, whatever id the page sent, that the current
        user may read (``need``)."""
        run = self.runs_seen.get(run_id)
        if need:
            self.permissions.require(need, "see this run", experiment_id=run.experiment_id)
        return run

    def check_run(self, run_id, need: str | None = READ) -> str:
        """``run_id`` if it names an LLMBreaker training run of the store that the current user
        may read (known runs are remembered, so scrubbing costs no store read)."""
        experiment_id = self.runs_seen.known_experiment(run_id)
        if experiment_id is None:
            return self.run(run_id, need).run_id
        if need:
            self.permissions.require(need, "see this run", experiment_id=experiment_id)
        return run_id

    def experiment_of(self, run_id) -> str:
        """The name of the experiment of a run the current user may read."""
        return self.runs_seen.experiment_name(self.run(run_id).experiment_id)

    # -- models ------------------------------------------------------------------------------

    def models(self):
        """The library's models the current user may read."""
        return [(name, versions) for name, versions in self.library.models()
                if not self.permissions.refusal(READ, "see it", model=name)]

    def checkpoints(self, run_id):
        """The run's completely stored checkpoints (its READY logged models)."""
        return self.reader.checkpoints(self.check_run(run_id))

    # -- a run's metrics ---------------------------------------------------------------------

    def chart(self, run_id: str, run=None) -> dict:
        """The loss chart's data: train_loss downsampled, val_loss whole."""
        run = run or self.run(run_id)
        train = self.reader.metric(run_id, TRAIN_LOSS, max_points=CHART_POINTS, run=run)
        val = self.reader.metric(run_id, VAL_LOSS, run=run)
        return {"train": (train.steps.tolist(), train.values.tolist()),
                "val": (val.steps.tolist(), val.values.tolist())}

    def series(self, run_id: str, key: str, run=None) -> tuple[list, list]:
        """One metric's (steps, values), whole."""
        found = self.reader.metric(run_id, key, run=run or self.run(run_id))
        return found.steps.tolist(), found.values.tolist()

    def entropy(self, run_id: str, run=None) -> dict[tuple[int, int], tuple[list, list]]:
        """Each head's attention entropy (steps, values) by 0-based (layer, head); empty for a
        run trained before LLMBreaker measured it."""
        found = self.reader.head_entropy(run_id, run or self.run(run_id), ENTROPY_POINTS)
        return {head: (series.steps.tolist(), series.values.tolist()) for head, series in found.items()}

    def new_points(self, run_id: str, key: str, after: int | None, run) -> tuple[list, list]:
        series = self.reader.metric(self.check_run(run_id), key, after_step=after if after is not None else -1, run=run)
        return series.steps.tolist(), series.values.tolist()

    def value_at(self, run_id: str, key: str, step: int) -> float | None:
        return self.reader.value_at(self.check_run(run_id), key, step)

    def events(self, run_id: str, run=None) -> dict:
        """What happened during the run, for the loss chart: checkpoints, saves to the model
        library, pauses and resumes, the version a resumed run continues, the warm-up's end."""
        run = run or self.run(run_id)
        paused = self.reader.metric(run_id, PAUSED, run=run)
        return {"checkpoints": [c.step for c in self.reader.checkpoints(run_id, run)],
                "saves": [(step, ref) for step, ref in self.library.saved_from(run_id)
                          if not self.permissions.refusal(READ, "see it", model=ref.rpartition("/")[0])],
                "pauses": list(zip(paused.steps.tolist(), (bool(v) for v in paused.values))),
                "resumed_from": run.tags.get(MODEL_VERSION_TAG),
                "warmup": whole_number(run.params.get(PARAM_WARMUP))}

    # -- a run's snapshots -------------------------------------------------------------------

    def snapshot_steps(self, run_id: str, run=None) -> list[int]:
        return self.reader.snapshot_steps(self.check_run(run_id), run=run)

    def snapshot(self, run_id: str, step: int):
        return self.reader.snapshot(self.check_run(run_id), step)

    def weights(self, run_id: str, step: int):
        """(ModelConfig, weights) of the model at a snapshot's step, for the playground (at most
        ``limits.MAX_LOADED_PARAMETERS``: the store may hold any model settings)."""
        return self.reader.weights(self.check_run(run_id), step, limits.MAX_LOADED_PARAMETERS)

    def checkpoint_before(self, run_id: str, step: int) -> tuple[int, bytes]:
        """(its step, its bytes) of the run's last checkpoint at or before ``step``: the model
        for the playground where a run kept no weights beside its snapshots."""
        earlier = [c for c in self.checkpoints(run_id) if c.step <= step]
        if not earlier:
            raise LLMBError(f"this run kept the model's weights only in checkpoints, and has none by step {step}")
        found = earlier[-1]
        label = f"checkpoint of step {found.step} in run {run_id}"
        return found.step, self.reader.model_artifact_bytes(found.model_id, CHECKPOINT_MODEL_FILE, label,
                                                            checkpoint_bytes(limits.MAX_LOADED_PARAMETERS))

    def samples(self, run_id: str, steps: list[int]) -> list[tuple[int, str]]:
        run_id = self.check_run(run_id)
        return [(step, self._sample(run_id, step)) for step in steps]

    @cachedmethod(lambda self: self._samples, lock=lambda self: self._lock)
    def _sample(self, run_id: str, step: int) -> str:
        snap = self.snapshot(run_id, step)
        return snap.prompt + snap.sample

    def embedding_range(self, run_id: str, steps: list[int]) -> float:
        """One axis range for the star map of every step, so axes stay put while scrubbing."""
        extents = [float(np.abs(embedding).max()) for embedding in
                   (self.snapshot(run_id, s).embedding for s in {steps[0], steps[-1]}) if embedding.size]
        return max(extents, default=0) * 1.15 or 1.0

    def export(self, run_id, fmt: str, max_frames: int) -> tuple[str, bytes]:
        """(file name, content) of the shown run exported as ``fmt`` (``llmb export``'s formats);
        a movie shows at most ``max_frames`` of its snapshots, evenly spread, first and last kept."""
        from llmb_mlflow.export.exporter import Exporter, evenly
        from llmb_mlflow.export.movie import MOVIES

        run_id = self.check_run(run_id)
        steps = evenly(self.snapshot_steps(run_id), max_frames) if fmt in MOVIES else None
        return Exporter(self.reader).to_bytes(run_id, fmt, steps=steps or None)
