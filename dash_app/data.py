"""The viewer's one door to the store: what it reads (through ``RunReader``, cached there and
here), the checks of what a page names against the store, and every change it makes, each of
which a read-only viewer refuses."""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np
from cachetools import LRUCache, cachedmethod

from llmb_mlflow.library import control
from llmb_mlflow.launch import launcher, limits
from llmb_mlflow.errors import LLMBError, shown
from llmb_mlflow.library.reader import RunReader, RunSummary
from llmb_mlflow.library.registry import ModelLibrary, not_a_training_run
from llmb_mlflow.run_layout import (
    CHECKPOINT_MODEL_FILE, DEFAULT_EXPERIMENT, KIND_TAG, MODEL_VERSION_TAG, PARAM_WARMUP, PAUSED, TRAINING_RUN,
    TRAIN_LOSS, VAL_LOSS,
)
from llmb_mlflow.training.shapes import checkpoint_bytes
from llmb_mlflow.store.client import store_errors
from llmb_mlflow.numbers import whole_number
from llmb_mlflow.launch.uploads import Upload, store_upload

from . import checks
from .access import CREATE, EDIT, MANAGE, READ, Open

CHART_POINTS = 2000
COMPARABLE_RUNS = 1000  # the Compare menu's list, newest first
ENTROPY_POINTS = 500  # per head: a 36-head run's chart stays light however many snapshots
READ_ONLY = "this viewer is read-only: change trainings and models with `llmb` or a viewer that is not"


class ViewerData:
    """``training_uri``: the tracking URI trainings started from the viewer log to (a string, or
    a function of the current request); the reader's own by default. ``read_only``: the viewer
    only shows; every change (controls, models, new trainings, uploads) is refused. ``access``:
    who may do what (``access.Open``: everyone everything; ``access.SignedIn``: MLflow's
    permissions of the signed-in user); ``max_trainings``: how many trainings started from the
    viewer may run at once (``launcher.default_at_most()`` if None); ``training_env``: environment
    variables trainings started from the viewer get (None: removed from the viewer's own)."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
                 cache_size: int = 4096, artifacts_destination: str | None = None,
                 training_uri: str | Callable[[], str] | None = None, read_only: bool = False,
                 access: Open | None = None, max_trainings: int | None = None,
                 training_env: dict[str, str | None] | None = None):
        self.reader = RunReader(tracking_uri, artifacts_destination=artifacts_destination)
        self._library = ModelLibrary(reader=self.reader, on_created=lambda name: self.access.model_changed("created", name))
        self.experiment = experiment
        self.read_only = read_only
        self.access = access or Open()
        self.max_trainings = max_trainings or launcher.default_at_most()
        self._training_uri = training_uri or self.reader.uri
        self.training_env = dict(training_env or {})
        self._samples = LRUCache(cache_size)  # the text of a snapshot's sample, by run and step
        self._training_runs = LRUCache(4096)  # LLMBreaker training runs' experiment ids, by run id
        self._lock = threading.Lock()

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
            experiment_id = self._experiment_of(run_id)
        return self.access.refusal(need, "experiment", experiment_id, lambda: self._experiment_name(experiment_id), doing)

    def require(self, need: str, doing: str, **of) -> None:
        reason = self.refusal(need, doing, **of)
        if reason:
            raise LLMBError(reason)

    # -- changes ---------------------------------------------------------------------------

    def control(self, run_id: str, command: str) -> None:
        """Ask the run's training to pause, resume, step, stop or checkpoint (checked by
        ``control`` against the store: an LLMBreaker training that is running)."""
        self.require(EDIT, f"{command} this run", run_id=run_id)
        control.send(self.reader.client, run_id, command)

    def mark_failed(self, run_id: str) -> None:
        self.require(EDIT, "mark this run failed", run_id=run_id)
        control.mark_failed(self.reader.client, run_id)

    def start_training(self, args: list[str]) -> launcher.Started:
        """Start ``llmb ARGS``; its experiment comes from ``experiment_to_train_in``."""
        self.check_writable()
        return self._launch(args)

    def _launch(self, args: list[str]) -> launcher.Started:
        return launcher.start(args, self.training_uri(), env={**self.training_env, **self.access.credentials()},
                              at_most=self.max_trainings, owner=self.access.owner())

    def follow_launch(self, launch_id) -> str | None:
        """``launcher.state`` of a training the current user started from a viewer of this
        machine: nothing the request says names a process, and a read-only viewer, which starts
        none, follows none."""
        self.check_writable()
        return launcher.state(launch_id, owner=self.access.owner())

    def keep_upload(self, filename: str, raw: bytes, experiment=None) -> Upload:
        """Keep a corpus for trainings in ``experiment`` (the viewer's own if None): only for
        users who may start them there."""
        self.experiment_to_train_in(experiment or self.experiment)
        return store_upload(filename, raw)

    def save_model(self, run_id: str, name: str):
        """The saved version, or the step of the checkpoint the shown run's training was asked
        for, to save with ``finish_save`` once it is written."""
        self._may_save(run_id, name)
        step = self._library.checkpoint_for_saving(self.check_run(run_id), name, limits.MAX_RUN_CHECKPOINTS)
        return self._library.save(run_id, name) if step is None else step

    def finish_save(self, run_id: str, name: str, step: int, asked_ms: int, token: str):
        self._may_save(run_id, name)
        return self._library.finish_saving(self.check_run(run_id), name, step, asked_ms, token)

    def _may_save(self, run_id, name) -> None:
        """Refuse a save the current user may not make: EDIT on the run's experiment, and EDIT on
        the model if it exists, else a name not denied to them."""
        self.require(EDIT, "save a model from this run", run_id=run_id)
        if self._library.exists(name):
            self.require(EDIT, "add a version to it", model=name)
        else:
            self.require(CREATE, "create it", model=name)

    def rename_model(self, name: str, new_name: str) -> None:
        self.require(EDIT, "rename it", model=name)
        self._library.rename(name, new_name)
        self.access.model_changed("renamed", name, new_name)

    def check_deletable(self, name: str, version: str) -> None:
        """Refuse, before the page asks for a confirmation, a delete that would be refused."""
        self.require(MANAGE, "delete its versions", model=name)
        self._library.resolve(f"{name}/{version}")

    def delete_version(self, name: str, version: str) -> bool:
        self.require(MANAGE, "delete its versions", model=name)
        gone = self._library.delete(name, version)
        if gone:
            self.access.model_changed("deleted", name)
        return gone

    # -- reads -----------------------------------------------------------------------------

    def models(self):
        """The library's models the current user may read."""
        return [(name, versions) for name, versions in self._library.models()
                if not self.refusal(READ, "see it", model=name)]

    def checkpoints(self, run_id):
        """The run's completely stored checkpoints (its READY logged models)."""
        return self.reader.checkpoints(self.check_run(run_id))

    def load_model(self, ref: str, more_steps: int, experiment) -> tuple[launcher.Started, object]:
        """Continue a saved version for ``more_steps`` in a new run of its own process."""
        self.check_writable()
        self.require(READ, "load it", model=checks.argument(ref, "model").rpartition("/")[0] or ref)
        args, version = limits.resume_args(self._library, ref, more_steps, self.experiment_to_train_in(experiment))
        return self._launch(args), version

    def training_uri(self) -> str:
        return self._training_uri() if callable(self._training_uri) else self._training_uri

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
                if not self.refusal(READ, "see it", experiment_id=experiment_id)]

    def runs(self, experiment=None):
        name = checks.name(experiment, "experiment", optional=True) or self.experiment
        if self.access.signs_in:
            with store_errors(self.reader.uri):
                found = self.reader.client.get_experiment_by_name(name)
            if found is not None:
                self.require(READ, "see its runs", experiment_id=found.experiment_id)
        return self.reader.runs(name)

    def run(self, run_id, need: str | None = READ):
        """An LLMBreaker training run of the store, whatever id the page sent, that the current
        user may read (``need``)."""
        run = self.reader.run(checks.run_id(run_id))
        if run.tags.get(KIND_TAG) != TRAINING_RUN:
            raise not_a_training_run(run_id)
        with self._lock:
            self._training_runs[run_id] = run.experiment_id
        if need:
            self.require(need, "see this run", experiment_id=run.experiment_id)
        return run

    def check_run(self, run_id, need: str | None = READ) -> str:
        """``run_id`` if it names an LLMBreaker training run of the store that the current user
        may read (known runs are remembered, so scrubbing costs no store read)."""
        with self._lock:
            experiment_id = self._training_runs.get(run_id) if isinstance(run_id, str) else None
        if experiment_id is None:
            return self.run(run_id, need).run_id
        if need:
            self.require(need, "see this run", experiment_id=experiment_id)
        return run_id

    def _experiment_of(self, run_id: str) -> str:
        with self._lock:
            found = self._training_runs.get(run_id)
        return found if found is not None else self.run(run_id, need=None).experiment_id

    def experiment_of(self, run_id) -> str:
        """The name of the experiment of a run the current user may read."""
        return self._experiment_name(self.run(run_id).experiment_id)

    def _experiment_name(self, experiment_id: str) -> str:
        with store_errors(self.reader.uri):
            return self.reader.client.get_experiment(experiment_id).name

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

    def events(self, run_id: str, run=None) -> dict:
        """What happened during the run, for the loss chart: checkpoints, saves to the model
        library, pauses and resumes, the version a resumed run continues, the warm-up's end."""
        run = run or self.run(run_id)
        paused = self.reader.metric(run_id, PAUSED, run=run)
        return {"checkpoints": [c.step for c in self.reader.checkpoints(run_id, run)],
                "saves": [(step, ref) for step, ref in self._library.saved_from(run_id)
                          if not self.refusal(READ, "see it", model=ref.rpartition("/")[0])],
                "pauses": list(zip(paused.steps.tolist(), (bool(v) for v in paused.values))),
                "resumed_from": run.tags.get(MODEL_VERSION_TAG),
                "warmup": whole_number(run.params.get(PARAM_WARMUP))}

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
        extents = [float(np.abs(self.snapshot(run_id, s).embedding).max()) for s in {steps[0], steps[-1]}]
        return max(extents) * 1.15 or 1.0

    def value_at(self, run_id: str, key: str, step: int) -> float | None:
        return self.reader.value_at(self.check_run(run_id), key, step)

    def export(self, run_id, fmt: str, max_frames: int) -> tuple[str, bytes]:
        """(file name, content) of the shown run exported as ``fmt`` (``llmb export``'s formats);
        a movie shows at most ``max_frames`` of its snapshots, evenly spread, first and last kept."""
        from llmb_mlflow.export.exporter import Exporter, evenly
        from llmb_mlflow.export.movie import MOVIES

        run_id = self.check_run(run_id)
        steps = evenly(self.snapshot_steps(run_id), max_frames) if fmt in MOVIES else None
        return Exporter(self.reader).to_bytes(run_id, fmt, steps=steps or None)
