"""A training as ``llmb train`` and ``llmb resume`` run it: set-up (new or from a saved model),
data-parallel ranks, the progress display, Ctrl-C and SIGTERM, the run's end and registering its
last checkpoint. The commands parse and print; this module does the work, and tests call it
without a terminal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .errors import LLMBError
from .run_layout import (
    DEFAULT_EXPERIMENT, MODEL_VERSION_TAG, PARENT_RUN_ID_TAG, PARENT_RUN_TAG, RUN_ANNOUNCEMENT, WORLD_SIZE_TAG,
)
from .training.shapes import DEFAULT_MAX_PARAMS

if TYPE_CHECKING:
    from .training.tracker import Tracker


def _say(text: str) -> None:
    print(text, flush=True)


def _warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Output:
    """Where a training's messages go: ``say`` for what it does, ``warn`` for what went wrong.
    "Logging to MLflow run ID" goes to ``say`` as the run starts: the launcher waits for it."""

    say: Callable[[str], None] = _say
    warn: Callable[[str], None] = _warn


SYSTEM_METRICS_SECONDS = 10.0  # MLflow's own default sampling interval


@dataclass(frozen=True)
class Tracking:
    """Where a training logs: a store, an experiment, and a model to register its end in."""

    uri: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    register: str | None = None
    source: str = "llmb train"  # the command, as MLflow's UI shows a run's source
    system_metrics: bool = True  # CPU and memory every SYSTEM_METRICS_SECONDS


@dataclass(frozen=True)
class Outcome:
    """How a training ended. ``interrupted``: by a signal (or, outside a data-parallel training,
    a stop asked through the store), which the command reports as such."""

    step: int
    losses: dict[str, float]
    run_id: str | None = None
    run_name: str | None = None
    uri: str | None = None
    experiment: str | None = None
    default_store: bool = False  # ``uri`` is where MLflow logs when told nothing
    stopped: bool = False
    interrupted: bool = False
    rank: int = 0  # of a data-parallel training; only rank 0 reports

    @classmethod
    def of(cls, trainer, tracker, stopped: bool, interrupted: bool, rank: int = 0) -> "Outcome":
        return cls(trainer.step, dict(trainer.last_eval), tracker.run_id, tracker.run_name, tracker.uri,
                   tracker.experiment, tracker.default_store, stopped, interrupted, rank)


@dataclass(frozen=True)
class Resume:
    """A saved version made ready to train on: its checkpoint, settings, corpus and the tags
    that link the new run to it."""

    version: object
    state: dict
    config: object
    data: object
    tags: dict[str, str]
    uri: str

    @property
    def run_name(self) -> str:
        """The new run's name unless one is given: what it continues."""
        return f"{self.version.name}-v{self.version.version} (resumed)"


def prepare(preset: str, dataset: str, overrides: dict, tracking: Tracking | None = None):
    """The settings and corpus of a new training, and what to give ``run`` as its tracking:
    its tracker, started once the settings are known to be good, so MLflow loads while torch
    and the corpus do (only in the process that tracks: rank 0 when torchrun sets RANK; the
    others get ``tracking`` back). Bad settings are one-line errors."""
    from .training.config import build_config
    from .training.corpus import load_corpus, prepare_dataset

    config = build_config(preset, dataset=dataset, **overrides)
    if tracking and os.environ.get("RANK", "0") == "0":
        tracking = _mlflow_tracker(tracking)
    try:
        return config, prepare_dataset(load_corpus(dataset), config.model.block_size), tracking
    except BaseException:
        if tracking and not isinstance(tracking, Tracking):
            tracking.close()
        raise


def prepare_resume(model_ref: str, dataset: str | None, overrides: dict, tracking_uri: str | None,
                   viewer_limits: bool = False, max_params: int = DEFAULT_MAX_PARAMS) -> Resume:
    """A saved version ready to continue: settings may change, the model's shape may not; a
    model of more than ``max_params`` parameters is refused before it is built.
    ``viewer_limits``: refuse what a training started from a viewer may not do (``limits``)."""
    from .training import checkpoint
    from .launch import limits
    from .training.corpus import CharTokenizer, load_corpus, prepare_dataset
    from .library.registry import ModelLibrary

    library = ModelLibrary(tracking_uri)
    if viewer_limits:
        version, state = library.checkpoint(model_ref, min(max_params, limits.MAX_LOADED_PARAMETERS))
    else:
        version, state = library.checkpoint(model_ref, max_params, "--max-params")
    checkpoint.check_resumable(state)
    step, saved_iters = int(state["step"]), state["train_config"]["max_iters"]
    if overrides.get("max_iters") is None and saved_iters <= step:
        raise LLMBError(f"{version.ref} is at step {step}, its training's last; "
                        f"give --max-iters greater than {step}")
    if overrides.get("max_iters") is not None and overrides["max_iters"] <= step:
        raise LLMBError(f"--max-iters must be greater than the checkpoint's step {step}")
    spec = dataset or state["train_config"]["dataset"]
    if viewer_limits:
        spec = limits.corpus(spec, None if dataset else version.ref)
    config = checkpoint.run_config(state, dataset=spec, **overrides)
    if viewer_limits:
        limits.check_cost(config, config.train.max_iters - step)
    data = prepare_dataset(load_corpus(spec), config.model.block_size, CharTokenizer(state["vocab"]))
    tags = {PARENT_RUN_TAG: version.run_id, MODEL_VERSION_TAG: version.ref, PARENT_RUN_ID_TAG: version.run_id}
    return Resume(version, state, config, data, tags, library.uri)


@contextlib.contextmanager
def data_parallel():
    """Under ``torchrun`` with several processes, this process's rank of a data-parallel
    training (see ``distributed``); otherwise None."""
    from .training.distributed import DataParallel, world

    if world()[1] == 1:
        yield None
        return
    parallel = DataParallel()
    try:
        yield parallel
        parallel.finish()
    except KeyboardInterrupt:
        if parallel.agreed_to_stop:  # every rank stopped at the same step; aborts don't wait
            parallel.finish()
        raise
    finally:
        parallel.close()


def device(parallel) -> str | None:
    return parallel.device if parallel else None


@contextlib.contextmanager
def stop_signals(handler):
    """Ctrl-C and SIGTERM call ``handler`` while the block runs."""
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(trainer, tracking: Tracking | Tracker | None, run_name: str | None = None, tags: dict | None = None,
        parallel=None, out: Output = Output(), threads: int | None = None) -> Outcome:
    """Train to the end with a progress display; Ctrl-C and SIGTERM stop after the current step
    (the run checkpoints and ends KILLED), a second one aborts at once. ``tracking``: None for
    no MLflow run; its tracker, if ``prepare`` started it. Of a data-parallel training only
    rank 0 tracks and reports. ``threads``: compute threads, else this training's share of the
    machine's cores (``threads.ThreadShare``)."""
    from .training.threads import ThreadShare

    share = ThreadShare(threads)
    share.update()
    try:
        return _run(trainer, tracking, run_name, tags, parallel, out, share)
    finally:
        share.close()


def _run(trainer, tracking, run_name, tags, parallel, out, share) -> Outcome:
    from .tracking.outage import StoreConditions
    from .training.progress import TrainingProgress
    from .training.tracker import Tracker
    from .training.trainer import TrainingStopped, run_training

    if parallel:
        parallel.attach(trainer)
        if parallel.rank:
            return _train_quietly(trainer, parallel.rank, share)
        tags = {**(tags or {}), WORLD_SIZE_TAG: str(parallel.size)}
    if tracking is None:
        tracker = Tracker()
    else:
        tracker = _mlflow_tracker(tracking) if isinstance(tracking, Tracking) else tracking
    config, data = trainer.config, trainer.dataset
    start = f"from step {trainer.step} " if trainer.step else ""
    where = f"{parallel.size} processes" if parallel else trainer.device
    out.say(f"Training {config.preset} MicroGPT ({trainer.model.num_parameters():,} parameters) "
            f"{start}on {data.name} ({len(data.train_ids):,} train / {len(data.val_ids):,} val "
            f"characters, vocabulary {data.tokenizer.vocab_size}) on {where}.")
    progress = TrainingProgress(config.train.max_iters, trainer)

    said = []
    store = StoreConditions(out.warn)

    def announce():  # once the run exists: at once in this process, a moment later from a helper
        if tracker.run_id and not said:
            from .errors import redact

            said.append(True)
            out.say(f"{RUN_ANNOUNCEMENT} {tracker.run_id} ({tracker.run_name}) at {redact(tracker.uri)}")

    def step_done(step, metrics):
        share.update()
        announce()
        store.update(tracker.last_error)
        progress.update(step, metrics)

    stopped = interrupted = False
    try:
        with stop_signals(_stopper(trainer, out)), progress:
            run_training(trainer, tracker, run_name, tags=tags, on_start=announce, on_progress=step_done)
    except (KeyboardInterrupt, TrainingStopped):
        stopped = True
        # asked through the store, a data-parallel training ends cleanly on every rank (torchrun)
        interrupted = not (parallel and not trainer.stop_requested)
        out.warn(f"Stopped at step {trainer.step}." + (
            f" Run {tracker.run_id} is marked KILLED; everything logged so far is kept."
            if tracker.run_id else ""))
    finally:  # said however the training ended, an error included
        announce()
        if tracker.failed_writes:
            out.warn(f"Note: {tracker.failed_writes} write(s) to the tracking store failed and were "
                     f"retried (last error: {tracker.last_failure}).")
    return Outcome.of(trainer, tracker, stopped, interrupted)


def register(outcome: Outcome, name: str):
    """Register the last checkpoint of a training that ran to its end as a version of ``name``."""
    from .library.registry import ModelLibrary

    return ModelLibrary(outcome.uri).save(outcome.run_id, name)


def _mlflow_tracker(tracking: Tracking):
    """The run is logged from a helper process, so the first steps need not wait for MLflow."""
    from .library.registry import check_name
    from .tracking.process import TrackingProcess

    if tracking.register:
        check_name(tracking.register)
    return TrackingProcess(tracking.uri, tracking.experiment, source=tracking.source,
                           system_metrics=SYSTEM_METRICS_SECONDS if tracking.system_metrics else None)


def _train_quietly(trainer, rank: int, share) -> Outcome:
    """A data-parallel rank other than 0: train in step with rank 0, stop when it stops."""
    from .training.tracker import Tracker
    from .training.trainer import TrainingStopped, run_training

    stopped = interrupted = False
    tracker = Tracker()
    try:
        with stop_signals(lambda *_: trainer.request_stop()):
            run_training(trainer, tracker, on_progress=share.update)
    except TrainingStopped:
        stopped = True
        interrupted = trainer.stop_requested  # a signal; else rank 0 was asked: a clean end
    return Outcome.of(trainer, tracker, stopped, interrupted, rank)


def _stopper(trainer, out: Output):
    """Ctrl-C or SIGTERM: finish the current step, checkpoint and stop; a second one aborts."""
    def stop(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.request_stop()
        out.warn("\nStopping after this step (press Ctrl-C again to abort at once)...")

    return stop
