"""Checkpoints: everything needed to use or resume a model, as one ``torch.save`` file that
loads with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only: loading
never runs code from the file)."""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import asdict, fields
from typing import Any

import numpy as np
import torch

from . import shapes
from .config import ModelConfig, RunConfig, SettingError, TrainConfig, merge
from .corpus import CharTokenizer
from ..errors import LLMBError, shown
from ..formats.vocabulary import Vocabulary
from .shapes import DEFAULT_MAX_PARAMS

FORMAT_VERSION = 1
REQUIRED = ("format", "step", "model", "optimizer", "model_config", "train_config", "preset",
            "dataset", "vocab", "losses", "rng_state")


def dump(trainer) -> bytes:
    """The trainer's state at its current step."""
    state = {
        "format": FORMAT_VERSION,
        "step": trainer.step,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "model_config": asdict(trainer.model_config),
        "train_config": asdict(trainer.config.train),
        "preset": trainer.config.preset,
        "dataset": trainer.dataset.name,
        "vocab": trainer.dataset.tokenizer.chars,
        "losses": {**trainer.last_eval, **trainer.last_train},
        "rng_state": trainer.batch_rng.get_state(),
        "precision": trainer.precision,
        "embedding_basis": None if trainer.probe.basis is None else torch.from_numpy(trainer.probe.basis),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def dump_recorded(step: int, model_config: dict, weights: dict, vocab: str | list[str],
                  losses: dict[str, float]) -> bytes:
    """A checkpoint ``llmb.record`` takes of a model it can run as a MicroGPT (``weights``:
    arrays under MicroGPT's names), in a training it does not run: no optimizer state nor
    training settings, so it is used (generate, save, the library, the Playground) but never
    resumed here. ``vocab``: its characters as one string, else its tokens in id order."""
    state = {
        "format": FORMAT_VERSION, "step": step, "recorded": True,
        "model": {name: torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)) for name, array in weights.items()},
        "optimizer": {}, "model_config": model_config, "train_config": {}, "preset": "", "dataset": "",
        "vocab": vocab if isinstance(vocab, str) else list(vocab), "losses": dict(losses), "rng_state": torch.zeros(0, dtype=torch.uint8),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _check_archive(data: bytes, label: str) -> None:
    """Refuse what would make ``torch.load`` allocate more than the file holds: anything but the
    archive ``torch.save`` writes, whose parts are stored as they are, never compressed."""
    why = None
    if not data:
        why = "it ends too early"
    elif not data.startswith(b"PK\x03\x04"):
        why = "it is not the archive PyTorch writes"
    else:
        try:
            entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
        except (zipfile.BadZipFile, ValueError, EOFError):
            why = "it is cut short or damaged"
        else:
            if any(e.compress_type != zipfile.ZIP_STORED for e in entries) or sum(e.file_size for e in entries) > len(data):
                why = "its parts are compressed, which PyTorch never does"
    if why:
        raise LLMBError(f"{label} is corrupt or not an LLMBreaker checkpoint ({why})")


def load(data: bytes, label: str = "checkpoint", max_params: int = DEFAULT_MAX_PARAMS,
         raise_with: str | None = None) -> dict[str, Any]:
    """Parse a checkpoint safely and check it (``shapes.check``: its model settings, its size
    within ``max_params``, its weights' shapes; ``raise_with`` says how to allow more) before
    anything is built from it; anything else is a one-line LLMBError naming ``label``."""
    shapes.check_checkpoint_size(len(data), label, max_params, raise_with)
    _check_archive(data, label)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise LLMBError(f"{label} is corrupt or not an LLMBreaker checkpoint ({_why(exc)})") from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED):
        raise LLMBError(f"{label} is not an LLMBreaker checkpoint (fields missing)")
    if not isinstance(state["format"], int) or isinstance(state["format"], bool):
        raise LLMBError(f"{label} is malformed: its format is {shown(state['format'])}")
    if state["format"] > FORMAT_VERSION:
        raise LLMBError(f"{label} was written by a newer LLMBreaker (format {state['format']})")
    weights = state["model"]
    if not isinstance(weights, dict) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
        raise LLMBError(f"{label} is malformed: its weights are not a set of tensors")
    config = shapes.check(state["model_config"], {name: t.shape for name, t in weights.items()},
                          label, max_params, raise_with)
    vocab = state["vocab"]
    if isinstance(vocab, str):
        if len(vocab) != config.vocab_size or len(set(vocab)) != len(vocab):
            raise LLMBError(f"{label} is malformed: its vocabulary is not {config.vocab_size} distinct characters")
    elif state.get("recorded") is not True or not isinstance(vocab, list) or len(vocab) != config.vocab_size \
            or not all(isinstance(token, str) for token in vocab):
        raise LLMBError(f"{label} is malformed: its vocabulary is not {config.vocab_size} characters or tokens")
    if not isinstance(state["step"], int) or isinstance(state["step"], bool) or state["step"] < 0:
        raise LLMBError(f"{label} is malformed: its step is {shown(state['step'])}")
    return {**state, "model_config": asdict(config), "train_config": _stored_train(state["train_config"], label)}


def _why(exc: Exception) -> str:
    """Why torch could not read a checkpoint, in our words (torch's own advise loading it
    unsafely, with ``weights_only=False``)."""
    if isinstance(exc, EOFError):
        return "it ends too early"
    if isinstance(exc, pickle.UnpicklingError):
        return "it holds something other than tensors, numbers, text, lists and dicts"
    return "it is cut short or damaged"


def _stored_train(given, label: str) -> dict:
    """A checkpoint's training settings, checked as a training checks them."""
    if not isinstance(given, dict):
        raise LLMBError(f"{label} is malformed: its training settings are {shown(given)}")
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in given.items() if k in known}
    if not isinstance(values.get("dataset", ""), str):
        raise LLMBError(f"{label} is malformed: its stored dataset is {shown(values['dataset'])}, not text")
    try:
        return asdict(TrainConfig(**values).validate())
    except SettingError as exc:
        raise LLMBError(f"{label} is malformed: its stored {exc.setting} {exc.problem}") from None
    except TypeError:
        raise LLMBError(f"{label} is malformed: its training settings are not all numbers") from None


def run_config(state: dict, **overrides) -> RunConfig:
    """The checkpoint's configuration with training overrides; model shape can't change."""
    saved_model = state["model_config"]
    for name, value in overrides.items():
        if value is not None and name in saved_model and value != saved_model[name] and name != "dropout":
            raise SettingError(name, f"{value} does not fit the checkpoint, whose model has "
                                     f"{saved_model[name]}; leave it out")
    return merge(state["preset"], saved_model, state["train_config"], **overrides)


def stored_model(state: dict) -> tuple[ModelConfig, dict, str | list[str]]:
    """The model settings, weights and vocabulary (characters as one string, else tokens) of a
    checkpoint ``load`` returned, as ``shapes.build`` takes them."""
    return ModelConfig(**state["model_config"]), state["model"], state["vocab"]


def build_model(state: dict):
    """The model (eval mode, CPU) and tokenizer of a checkpoint ``load`` returned (a token
    vocabulary's reads text by the longest token at each place)."""
    from .vocabulary import TokenTokenizer

    config, weights, vocab = stored_model(state)
    tokenizer = CharTokenizer(vocab) if isinstance(vocab, str) else TokenTokenizer(Vocabulary(vocab))
    return shapes.build(config, weights), tokenizer


def check_resumable(state: dict) -> None:
    """A checkpoint ``llmb.record`` took holds no optimizer state: it is used, never resumed."""
    if state.get("recorded", False) is not False:  # (True, or anything a crafted file holds)
        raise LLMBError("this checkpoint was recorded with llmb.record from a training script of its own (it "
                        "holds no optimizer state): continue that training in its script")
