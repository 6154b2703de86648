"""``llmb.record``: a training its user wrote, recorded as LLMBreaker records its own. Every
step's metrics and a snapshot per evaluation (a sample with its next-token probabilities, the
star map, every head's attention) go to an MLflow run through the same tracking helper, run
contract and spool as ``llmb train``'s; the viewer, ``mlflow ui`` and ``llmb runs`` (pause,
one step, stop) work on the run unchanged.

    import llmb_mlflow as llmb

    with llmb.record(model, tokenizer=itos, probe_text=val_text[:64], params=config) as rec:
        for step in range(max_iters):
            ...                                   # the user's own step
            rec.log(step, train_loss=loss.item())  # never waits for MLflow; waits while paused
            if step % eval_interval == 0:
                rec.snapshot(step, val_loss=val_loss)
            if rec.stop_requested:
                break
"""

from __future__ import annotations

import math
import operator
import os
import sys

from .errors import LLMBError, shown
from .run_layout import (
    DEFAULT_EXPERIMENT, FAILED, FINISHED, KILLED, PARAM_MODEL, PARAM_N_HEAD, PARAM_N_LAYER, TRAIN_LOSS, VAL_LOSS,
)
from .training.config import TrainConfig

SAMPLE_CHARS = TrainConfig.sample_chars  # as long as llmb train's samples
STAR_TOKENS = 1000  # a star map of more points turns slowly in a browser
MAX_STAR_TOKENS = 5000  # the viewer measures each point's distance to every other

def record(model, tokenizer, probe_text: str, *, experiment: str = DEFAULT_EXPERIMENT,
           run_name: str | None = None, params: dict | None = None, tracking_uri: str | None = None,
           view=None, prompt: str | None = None, sample_chars: int = SAMPLE_CHARS, temperature: float = 0.8,
           seed: int = 1337, system_metrics: bool = True, star_tokens=STAR_TOKENS) -> "Recorder":
    """Record the training of ``model`` in an MLflow run, as a context manager (see the module).

    ``tokenizer``: the tokens of the model's ids: a str of characters or a list of token
    strings in id order, nanoGPT's ``itos`` dict, or a tokenizer object with ``decode`` and
    ``vocab_size`` (its ``encode``, if any, reads ``probe_text`` and ``prompt``).
    ``probe_text``: text from the validation data whose attention each snapshot shows (cut to
    the model's context, at most 64 tokens). ``params``: the run's parameters (the training's
    settings). ``view``: how to see inside a model this package does not know
    (``llmb_mlflow.training.views.ModelView``). ``prompt``: what each snapshot's sample
    continues (a newline if the vocabulary has one); ``sample_chars`` tokens long.
    ``star_tokens``: the tokens the star map shows, as a number (the first ids, and the probe's)
    or a list of ids (say, the most frequent in the training data)."""
    return Recorder(model, tokenizer, probe_text, experiment=experiment, run_name=run_name, params=params,
                    tracking_uri=tracking_uri, view=view, prompt=prompt, sample_chars=sample_chars,
                    temperature=temperature, seed=seed, system_metrics=system_metrics, star_tokens=star_tokens)


class Recorder:
    """What ``record`` returns; checks everything it is given before a run is made."""

    def __init__(self, model, tokenizer, probe_text, *, experiment, run_name, params, tracking_uri, view, prompt,
                 sample_chars, temperature, seed, system_metrics, star_tokens):
        from .training.probes import PROBE_CHARS, RECORDED_WEIGHTS_MAX_PARAMS, SnapshotProbe
        from .training.views import unwrapped, view_of
        from .training.vocabulary import tokenizer_of

        self.model, self.view = unwrapped(model), view_of(model, view)
        self.tokenizer = tokenizer_of(tokenizer)
        self.vocabulary = self.tokenizer.vocabulary
        length = min(self.view.block_size, PROBE_CHARS)
        longest = max(map(len, self.vocabulary), default=1)
        if isinstance(probe_text, str):  # no more than the probe's tokens can take: text is read slowly
            probe_text = probe_text[:length * max(longest, 1) + 1]
        probe = _ids(probe_text, "probe_text", self.tokenizer)[:length]
        if len(probe) < 2:
            raise LLMBError(f"probe_text= must be at least 2 tokens long; got {shown(probe_text)}")
        if prompt is None:
            newline = next((i for i, token in enumerate(self.vocabulary) if token == "\n"), None)
            prompt_ids = probe[:1] if newline is None else [newline]
        else:
            prompt_ids = _ids(prompt, "prompt", self.tokenizer)
        if not isinstance(sample_chars, int) or isinstance(sample_chars, bool) or not 1 <= sample_chars <= 10_000:
            raise LLMBError(f"sample_chars= must be a whole number from 1 to 10000; got {shown(sample_chars)}")
        if not isinstance(temperature, (int, float)) or not 0 < temperature <= 10 or math.isnan(temperature):
            raise LLMBError(f"temperature= must be a number in (0, 10]; got {shown(temperature)}")
        self.probe = SnapshotProbe(self.tokenizer, prompt_ids, probe, sample_chars, float(temperature), int(seed),
                                   star_ids=_star_ids(star_tokens, len(self.vocabulary), probe),
                                   max_weight_params=RECORDED_WEIGHTS_MAX_PARAMS)
        self.params = _params(params)
        self.experiment, self.run_name, self.tracking_uri = experiment, run_name, tracking_uri
        self.system_metrics = system_metrics
        self.tracker = None
        self.stop_requested = False
        self._last_snapshot: int | None = None
        self._last_checkpoint: int | None = None
        self._losses: dict[str, float] = {}  # the latest of each, for a checkpoint
        self._gate = None
        self._ended = False

    # -- the run ------------------------------------------------------------------------

    def __enter__(self) -> "Recorder":
        from .session import SYSTEM_METRICS_SECONDS
        from .tracking.process import TrackingProcess
        from .training.gate import Gate
        from .training.tracker import RunDescription

        if self._gate is not None or self._ended:
            raise LLMBError("this recording has started already: record(...) again for another run")
        shape = self._shape()
        self.tracker = TrackingProcess(self.tracking_uri, self.experiment, source=_source(),
                                       system_metrics=SYSTEM_METRICS_SECONDS if self.system_metrics else None)
        try:
            self.tracker.start(RunDescription(params={**self.params, **shape}, run_name=self.run_name,
                                              model_params=shape, vocabulary=self.vocabulary))
            self._gate = Gate(self.tracker)
        except BaseException:
            self.tracker.close()
            raise
        return self

    def __exit__(self, kind, _error, _traceback) -> None:
        if self._gate is None:
            raise LLMBError("this recording has not started: use `with llmb.record(...) as rec:` or .start()")
        if self._ended:
            return
        self._ended = True
        if kind is None:
            self.tracker.finish(KILLED if self.stop_requested else FINISHED)
            return
        try:  # the training's own error goes on to its caller, whatever becomes of the run
            if issubclass(kind, KeyboardInterrupt):
                self.tracker.finish(KILLED)
            else:
                from .training.tracker import failure_of

                self.tracker.finish(FAILED, failure_of(_error))
        except LLMBError as exc:
            print(f"llmb.record: {exc}", file=sys.stderr)

    def start(self) -> "Recorder":
        """Make the run, as ``with`` does, for a script whose loop is not inside a ``with``
        (``rec = llmb.record(...).start()`` ... ``rec.finish()``). A script that dies before
        ``finish`` leaves a run that the tracking helper ends as the process ends."""
        return self.__enter__()

    def finish(self) -> None:
        """End the run: FINISHED, or KILLED if it was asked to stop."""
        self.__exit__(None, None, None)

    @property
    def run_id(self) -> str | None:
        """The run's id, once the tracking helper has made the run (a moment after the start)."""
        return self.tracker.run_id if self.tracker else None

    # -- what the training reports ------------------------------------------------------

    def log(self, step: int, **metrics: float) -> None:
        """The metrics of ``step`` (``train_loss=``, anything else); then, if the run has been
        paused, wait until it is resumed or stopped (``stop_requested``)."""
        self._started()
        step = _step(step)
        metrics = _metrics(metrics)
        self.tracker.log_metrics(step, metrics)
        self._keep_losses(metrics)
        if not self._gate.next(step, checkpoint=lambda: self._asked_checkpoint(step)):
            self.stop_requested = True

    def snapshot(self, step: int, **metrics: float) -> None:
        """A snapshot of the model as it is at ``step`` (its sample, star map and attention), with
        the evaluation's metrics (``val_loss=``, ...). Steps must grow from one to the next."""
        from .training.trainer import entropy_metrics

        self._started()
        step = _step(step)
        if self._last_snapshot is not None and step <= self._last_snapshot:
            raise LLMBError(f"snapshot step {step} is not after the last one, {self._last_snapshot}")
        snap = self.probe.capture(self.model, step, self.view)
        try:
            snap.check()
        except ValueError as exc:
            raise LLMBError(f"the snapshot of step {step} does not fit together ({exc}): check view=") from None
        self._last_snapshot = step
        metrics = _metrics(metrics)
        self.tracker.log_snapshot(snap)
        self.tracker.log_metrics(step, {**metrics, **entropy_metrics(snap.attention)})
        self._keep_losses(metrics)

    def checkpoint(self, step: int) -> None:
        """A checkpoint of the model as it is at ``step``: a logged model of the run (READY once
        stored) that ``llmb models save``, ``llmb generate``, the viewer's model library and the
        Playground use like one of ``llmb train``'s, though never to resume. For a model this
        package can run (MicroGPT, nanoGPT's GPT without biases) over characters; steps grow."""
        from .training.checkpoint import dump_recorded
        from .training.probes import runnable_weights

        self._started()
        step = _step(step)
        if self._last_checkpoint is not None and step <= self._last_checkpoint:
            raise LLMBError(f"checkpoint step {step} is not after the last one, {self._last_checkpoint}")
        if not self.vocabulary.is_chars:
            raise LLMBError("checkpoints of models whose tokens are longer than a character are not kept yet")
        found = runnable_weights(self.view, self.model, len(self.vocabulary))
        if found is None:
            raise LLMBError(f"checkpoints are kept of models this package can run (MicroGPT, nanoGPT's GPT without "
                            f"biases); a {type(self.model).__name__} is not one")
        self._last_checkpoint = step
        self.tracker.log_checkpoint(step, dump_recorded(step, *found, self.vocabulary.chars, self._losses))

    def _asked_checkpoint(self, step: int) -> None:
        """A checkpoint asked for from the viewer or with ``llmb runs checkpoint``, taken if it can be."""
        try:
            if self._last_checkpoint != step:
                self.checkpoint(step)
        except LLMBError as exc:
            print(f"llmb.record: a checkpoint was asked for and not taken: {exc}", file=sys.stderr)

    def _keep_losses(self, metrics: dict[str, float]) -> None:
        self._losses.update({k: v for k, v in metrics.items() if k in (TRAIN_LOSS, VAL_LOSS)})

    def _started(self) -> None:
        if self._gate is None:
            raise LLMBError("use record(...) in a with statement: `with llmb.record(model, ...) as rec:`")
        if self._ended:
            raise LLMBError("this recording has ended: its run takes no more steps")

    def _shape(self) -> dict[str, object]:
        """What the run records of the model's shape, from one look at it."""
        import torch

        from .training.views import as_array

        device = next(self.model.parameters()).device
        ids = torch.as_tensor(self.probe.probe_ids[:2], device=device)[None]
        with torch.inference_mode():
            attention = as_array(self.view.attention(ids))
            width = self.view.logits(ids).shape[-1]
        if attention is not None and (attention.ndim != 4 or attention.shape[2:] != (2, 2)):
            raise LLMBError(f"view= gives attention of shape {attention.shape} for 2 tokens; it must be "
                            "(layers, heads, 2, 2)")
        if width < self.tokenizer.vocab_size:
            raise LLMBError(f"the model gives {width} logits per position, fewer than the tokenizer's "
                            f"{self.tokenizer.vocab_size} ids")
        layers, heads = attention.shape[:2] if attention is not None else (0, 0)
        return {PARAM_MODEL: type(self.model).__name__, "n_params": sum(p.numel() for p in self.model.parameters()),
                "vocab_size": self.tokenizer.vocab_size, "block_size": self.view.block_size,
                PARAM_N_LAYER: int(layers), PARAM_N_HEAD: int(heads)}


def _ids(value, name: str, tokenizer):
    """``value``, text, as the tokenizer's ids."""
    if not isinstance(value, str) or not value:
        raise LLMBError(f"{name}= must be text the model can read; got {shown(value)}")
    try:
        ids = tokenizer.encode(value)
    except LLMBError as exc:
        raise LLMBError(f"{name}=: {exc}") from None
    if not len(ids):
        raise LLMBError(f"{name}= is no token at all for the tokenizer")
    return ids


def _star_ids(star_tokens, vocab_size: int, probe):
    """The ids the star map shows: None for every one."""
    if isinstance(star_tokens, int) and not isinstance(star_tokens, bool):
        if not 1 <= star_tokens <= MAX_STAR_TOKENS:
            raise LLMBError(f"star_tokens= must be from 1 to {MAX_STAR_TOKENS}; got {star_tokens}")
        if star_tokens >= vocab_size:
            return None
        chosen = set(list(dict.fromkeys(int(i) for i in probe))[:star_tokens])
        rest = (i for i in range(vocab_size) if i not in chosen)
        return sorted(chosen.union(next(rest) for _ in range(star_tokens - len(chosen))))
    try:
        ids = sorted({operator.index(i) for i in star_tokens})
    except TypeError:
        raise LLMBError(f"star_tokens= must be a number or a list of token ids; got {shown(star_tokens)}") from None
    if not ids or ids[0] < 0 or ids[-1] >= vocab_size or len(ids) > MAX_STAR_TOKENS:
        raise LLMBError(f"star_tokens= must list at most {MAX_STAR_TOKENS} ids from 0 to {vocab_size - 1}; got "
                        f"{shown(star_tokens)}")
    return ids


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


def _params(params) -> dict[str, object]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise LLMBError(f"params= must be a dict of settings; got a {type(params).__name__}")
    return {str(k): (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
            for k, v in params.items()}


def _source() -> str:
    """The script the training runs, as MLflow's UI shows a run's source."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "llmb.record"
