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
from .run_layout import DEFAULT_EXPERIMENT, PARAM_MODEL, PARAM_N_HEAD, PARAM_N_LAYER
from .training.config import TrainConfig
from .training.probes import STAR_TOKENS
from .training.recording import Recorder
from .training.tracker import RunDescription

SAMPLE_CHARS = TrainConfig.sample_chars  # as long as llmb train's samples
MAX_STAR_TOKENS = 5000  # the viewer measures each point's distance to every other

def record(model, tokenizer, probe_text: str, *, experiment: str = DEFAULT_EXPERIMENT,
           run_name: str | None = None, params: dict | None = None, tracking_uri: str | None = None,
           view=None, prompt: str | None = None, sample_chars: int = SAMPLE_CHARS, temperature: float = 0.8,
           seed: int = 1337, system_metrics: bool = True, star_tokens=STAR_TOKENS,
           step_weights: bool = True) -> Recorder:
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
    or a list of ids (say, the most frequent in the training data). ``step_weights``: keep the
    model's weights with each snapshot, for the Playground at any step (a model this package can
    run, of at most 2,000,000 parameters); False keeps them in checkpoints only.

    Everything is checked before a run is made; the run is made by ``with`` (or ``.start()``)."""
    from .session import SYSTEM_METRICS_SECONDS
    from .tracking.process import TrackingProcess
    from .training.probes import PROBE_CHARS, RECORDED_WEIGHTS_MAX_PARAMS, SnapshotProbe
    from .training.views import unwrapped, view_of
    from .training.vocabulary import tokenizer_of

    model, view = unwrapped(model), view_of(model, view)
    tokenizer = tokenizer_of(tokenizer)
    vocabulary = tokenizer.vocabulary
    length = min(view.block_size, PROBE_CHARS)
    longest = max(map(len, vocabulary), default=1)
    if isinstance(probe_text, str):  # no more than the probe's tokens can take: text is read slowly
        probe_text = probe_text[:length * max(longest, 1) + 1]
    probe = _ids(probe_text, "probe_text", tokenizer)[:length]
    if len(probe) < 2:
        raise LLMBError(f"probe_text= must be at least 2 tokens long; got {shown(probe_text)}")
    if prompt is None:
        newline = next((i for i, token in enumerate(vocabulary) if token == "\n"), None)
        prompt_ids = probe[:1] if newline is None else [newline]
    else:
        prompt_ids = _ids(prompt, "prompt", tokenizer)
    if not isinstance(sample_chars, int) or isinstance(sample_chars, bool) or not 1 <= sample_chars <= 10_000:
        raise LLMBError(f"sample_chars= must be a whole number from 1 to 10000; got {shown(sample_chars)}")
    if not isinstance(temperature, (int, float)) or not 0 < temperature <= 10 or math.isnan(temperature):
        raise LLMBError(f"temperature= must be a number in (0, 10]; got {shown(temperature)}")
    if not isinstance(step_weights, bool):
        raise LLMBError(f"step_weights= must be True or False; got {shown(step_weights)}")
    snapshots = SnapshotProbe(tokenizer, prompt_ids, probe, sample_chars, float(temperature), int(seed),
                              keep_weights=step_weights, star_ids=_star_ids(star_tokens, len(vocabulary), probe),
                              max_weight_params=RECORDED_WEIGHTS_MAX_PARAMS)
    shape = _shape(model, view, tokenizer, snapshots.probe_ids)
    description = RunDescription(params={**_params(params), **shape}, run_name=run_name, model_params=shape,
                                 vocabulary=vocabulary)
    def tracker():
        return TrackingProcess(tracking_uri, experiment, source=_source(),
                               system_metrics=SYSTEM_METRICS_SECONDS if system_metrics else None)

    return Recorder(model, snapshots, tracker, description, view=view, dump=_recorded_dump(model, view, vocabulary))


def _recorded_dump(model, view, vocabulary):
    """A checkpoint of the user's model in our format, for a model this package can run."""
    def dump(step: int, losses: dict) -> bytes:
        from .training.checkpoint import dump_recorded
        from .training.probes import runnable_weights

        found = runnable_weights(view, model, len(vocabulary))
        if found is None:
            raise LLMBError(f"checkpoints are kept of models this package can run (MicroGPT, nanoGPT's GPT without "
                            f"biases); a {type(model).__name__} is not one")
        return dump_recorded(step, *found, vocabulary.chars if vocabulary.is_chars else list(vocabulary), losses)

    return dump


def _shape(model, view, tokenizer, probe_ids) -> dict[str, object]:
    """What the run records of the model's shape, from one look at it."""
    import torch

    from .training.views import as_array

    device = next(model.parameters()).device
    ids = torch.as_tensor(probe_ids[:2], device=device)[None]
    with torch.inference_mode():
        attention = as_array(view.attention(ids))
        width = view.logits(ids).shape[-1]
    if attention is not None and (attention.ndim != 4 or attention.shape[2:] != (2, 2)):
        raise LLMBError(f"view= gives attention of shape {attention.shape} for 2 tokens; it must be "
                        "(layers, heads, 2, 2)")
    if width < tokenizer.vocab_size:
        raise LLMBError(f"the model gives {width} logits per position, fewer than the tokenizer's "
                        f"{tokenizer.vocab_size} ids")
    layers, heads = attention.shape[:2] if attention is not None else (0, 0)
    return {PARAM_MODEL: type(model).__name__, "n_params": sum(p.numel() for p in model.parameters()),
            "vocab_size": tokenizer.vocab_size, "block_size": view.block_size,
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
