"""One training's recording, written to a ``Tracker``: every step's metrics, a snapshot per
evaluation, checkpoints, and what the run's controllers ask between two steps (pause, one step,
stop, a checkpoint now). ``llmb.record`` gives one to a training its user wrote; LLMBreaker's own
trainer records through one too (``Trainer.run``), so both write the same runs."""

from __future__ import annotations

import operator
import sys
from typing import Callable

import numpy as np

from . import attention_stats
from .gate import Gate
from .tracker import RunDescription, Tracker, failure_of
from .views import view_of
from ..errors import LLMBError, shown
from ..run_layout import FAILED, FINISHED, KILLED, TRAIN_LOSS, VAL_LOSS, attn_entropy_metric


class TrainingStopped(Exception):
    """A training ended early because it was asked to stop (its run ends KILLED)."""


def entropy_metrics(attention) -> dict[str, float]:
    """The run contract's ``attn_entropy/l{layer}h{head}`` metrics of a snapshot's attention."""
    entropy = attention_stats.head_entropy(attention)
    return {attn_entropy_metric(layer, head): float(value) for (layer, head), value in np.ndenumerate(entropy)}


class Recorder:
    """Records ``model``'s training to ``tracker`` (or to the one ``tracker()`` makes as the run
    starts), started by ``start`` or ``with`` unless it was started already (``attach``). ``probe``: a ``probes.SnapshotProbe``; ``view``: how to see inside
    the model (``views``); ``dump(step, losses)``: a checkpoint's bytes (None: none are kept);
    ``agree``: data-parallel ranks agree on what to do; ``stopping``: a stop asked from within the
    process (a signal); ``last_step``: after it, nothing waits for a pause."""

    def __init__(self, model, probe, tracker: Tracker | Callable[[], Tracker], description: RunDescription | None = None, *, view=None,
                 dump: Callable[[int, dict], bytes] | None = None, agree: Callable[[int], int] | None = None,
                 stopping: Callable[[], bool] = lambda: False, last_step: int | None = None,
                 last_checkpoint: int | None = None):
        self.model, self.view, self.probe, self.tracker = model, view_of(model, view), probe, tracker
        self.description, self._dump = description, dump
        self._agree, self._stopping, self.last_step = agree, stopping, last_step
        self.stop_requested = False
        self.status: str | None = None  # how the run ended
        self.last_snapshot: int | None = None
        self.last_checkpoint = last_checkpoint
        self._losses: dict[str, float] = {}  # the latest of each, for a checkpoint
        self._gate: Gate | None = None
        self._ended = False

    # -- the run ------------------------------------------------------------------------

    def __enter__(self) -> "Recorder":
        if self._gate is not None or self._ended:
            raise LLMBError("this recording has started already: record(...) again for another run")
        if not isinstance(self.tracker, Tracker):
            self.tracker = self.tracker()
        try:
            self.tracker.start(self.description)
        except BaseException:
            getattr(self.tracker, "close", lambda: None)()
            raise
        try:
            return self.attach()
        except BaseException as exc:  # the tracking broke down as the run began
            self._ended, self.status = True, FAILED
            self.tracker.finish(FAILED, failure_of(exc))
            raise

    def __exit__(self, kind, error, _traceback) -> None:
        if self._gate is None:
            raise LLMBError("this recording has not started: use `with llmb.record(...) as rec:` or .start()")
        if self._ended:
            return
        self._ended = True
        if kind is None:
            self.status = KILLED if self.stop_requested else FINISHED
            self.tracker.finish(self.status)
        elif issubclass(kind, (KeyboardInterrupt, TrainingStopped)):
            self.status = KILLED
            self.tracker.finish(KILLED)
        else:
            self.status = FAILED
            try:
                self.tracker.finish(FAILED, failure_of(error))
            except LLMBError as exc:
                if isinstance(error, LLMBError):  # ours, of the tracking: the end says all of it
                    raise
                # the user's own error goes on to them, whatever becomes of the run
                print(f"llmb: the run could not be ended: {exc}", file=sys.stderr)

    def start(self) -> "Recorder":
        """Make the run, as ``with`` does, for a script whose loop is not inside a ``with``
        (``rec = llmb.record(...).start()`` ... ``rec.finish()``). A script that dies before
        ``finish`` leaves a run that the tracking helper ends as the process ends."""
        return self.__enter__()

    def finish(self) -> None:
        """End the run: FINISHED, or KILLED if it was asked to stop."""
        self.__exit__(None, None, None)

    def attach(self) -> "Recorder":
        """Record into the run the tracker has started already (ending it is left to its starter)."""
        self._gate = Gate(self.tracker, **({"agree": self._agree} if self._agree else {}))
        return self

    @property
    def run_id(self) -> str | None:
        """The run's id, once the tracking helper has made the run (a moment after the start)."""
        return getattr(self.tracker, "run_id", None)

    # -- what the training reports ------------------------------------------------------

    def log(self, step: int, **metrics: float) -> None:
        """The metrics of ``step`` (``train_loss=``, anything else); then, if the run has been
        paused, wait until it is resumed or stopped (``stop_requested``)."""
        self.log_metrics(step, **metrics)
        self.between_steps(step)

    def log_metrics(self, step: int, **metrics: float) -> None:
        """``log`` without the wait: for a loop that does more after logging a step (a
        checkpoint) before ``between_steps``."""
        self._started()
        step = _step(step)
        metrics = _metrics(metrics)
        if metrics:
            self.tracker.log_metrics(step, metrics)
            self._keep_losses(metrics)

    def between_steps(self, step: int) -> None:
        """Act on what the run's controllers ask after ``step``: wait while paused, take a
        checkpoint asked for, set ``stop_requested`` when asked to stop."""
        self._started()
        step = _step(step)
        if self.last_step is not None and step >= self.last_step:
            return  # the training is over: a pause now would only hold its end
        if not self._gate.next(step, self._stopping, lambda: self._asked_checkpoint(step)):
            self.stop_requested = True

    def snapshot(self, step: int, **metrics: float) -> str | None:
        """A snapshot of the model as it is at ``step`` (its sample, star map and attention), with
        the evaluation's metrics (``val_loss=``, ...); steps must grow from one to the next. The
        sample's text, or None when the run keeps no snapshots."""
        self._started()
        step = _step(step)
        if self.last_snapshot is not None and step <= self.last_snapshot:
            raise LLMBError(f"snapshot step {step} is not after the last one, {self.last_snapshot}")
        metrics = _metrics(metrics)
        self.last_snapshot = step
        self._keep_losses(metrics)
        if not self.tracker.wants_snapshots:
            if metrics:
                self.tracker.log_metrics(step, metrics)
            return None
        snap = self.probe.capture(self.model, step, self.view)
        try:
            snap.check()
        except ValueError as exc:
            raise LLMBError(f"the snapshot of step {step} does not fit together ({exc}): check view=") from None
        self.tracker.log_snapshot(snap)
        self.tracker.log_metrics(step, {**metrics, **entropy_metrics(snap.attention)})
        return snap.sample

    def checkpoint(self, step: int) -> None:
        """A checkpoint of the model as it is at ``step``: a logged model of the run (READY once
        stored) that ``llmb models save``, ``llmb generate``, the viewer's model library and the
        Playground use like one of ``llmb train``'s. Steps grow from one checkpoint to the next."""
        self._started()
        step = _step(step)
        if self.last_checkpoint is not None and step <= self.last_checkpoint:
            raise LLMBError(f"checkpoint step {step} is not after the last one, {self.last_checkpoint}")
        if self._dump is None:
            raise LLMBError("this recording keeps no checkpoints")
        if not self.tracker.wants_checkpoints:
            return
        payload = self._dump(step, dict(self._losses))
        self.last_checkpoint = step
        self.tracker.log_checkpoint(step, payload)

    def _asked_checkpoint(self, step: int) -> None:
        """A checkpoint asked for from the viewer or with ``llmb runs checkpoint``, taken if it can be."""
        try:
            if self.last_checkpoint != step:
                self.checkpoint(step)
        except LLMBError as exc:
            print(f"llmb: a checkpoint was asked for and not taken: {exc}", file=sys.stderr)

    def _keep_losses(self, metrics: dict[str, float]) -> None:
        self._losses.update({k: v for k, v in metrics.items() if k in (TRAIN_LOSS, VAL_LOSS)})

    def _started(self) -> None:
        if self._gate is None:
            raise LLMBError("use record(...) in a with statement: `with llmb.record(model, ...) as rec:`")
        if self._ended:
            raise LLMBError("this recording has ended: its run takes no more steps")


def _step(step) -> int:
    try:
        if isinstance(step, bool):
            raise TypeError
        step = operator.index(step)
    except (TypeError, ValueError, RuntimeError):
        raise LLMBError(f"step must be a whole number; got {shown(step)}") from None
    if step < 0:
        raise LLMBError(f"step must be 0 or more; got {step}")
    return step


def _metrics(metrics: dict) -> dict[str, float]:
    values = {}
    for name, value in metrics.items():
        if hasattr(value, "item"):  # a tensor or numpy scalar
            try:
                value = value.item()
            except (ValueError, RuntimeError):
                raise LLMBError(f"metric {name}= must be one number; got {shown(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LLMBError(f"metric {name}= must be a number; got {shown(value)}")
        values[name] = float(value)
    return values
