"""Checkpoints: everything needed to use or resume a model, as one ``torch.save`` file that
loads with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only: loading
never runs code from the file)."""

from __future__ import annotations

import io
import pickle
from dataclasses import asdict, fields
from typing import Any

import torch

from .config import ModelConfig, RunConfig, SettingError, TrainConfig
from .corpus import CharTokenizer
from .errors import LLMBError

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


def load(data: bytes, label: str = "checkpoint") -> dict[str, Any]:
    """Parse a checkpoint safely; anything else is a one-line LLMBError naming ``label``."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LLMBError(f"{label} is corrupt or not an LLMBreaker checkpoint ({reason[:200]})") from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED):
        raise LLMBError(f"{label} is not an LLMBreaker checkpoint (fields missing)")
    if state["format"] > FORMAT_VERSION:
        raise LLMBError(f"{label} was written by a newer LLMBreaker (format {state['format']})")
    return state


def run_config(state: dict, **overrides) -> RunConfig:
    """The checkpoint's configuration with training overrides; model shape can't change."""
    saved_model = state["model_config"]
    for name, value in overrides.items():
        if value is not None and name in saved_model and value != saved_model[name] and name != "dropout":
            raise SettingError(name, f"{value} does not fit the checkpoint, whose model has "
                                     f"{saved_model[name]}; leave it out")
    model_fields = {f.name for f in fields(ModelConfig)}
    train_fields = {f.name for f in fields(TrainConfig)}
    unknown = {k for k, v in overrides.items() if v is not None} - model_fields - train_fields
    if unknown:
        raise LLMBError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    model = ModelConfig(**{**saved_model, **{k: v for k, v in overrides.items()
                                              if v is not None and k in model_fields}})
    train = TrainConfig(**{**{k: v for k, v in state["train_config"].items() if k in train_fields},
                           **{k: v for k, v in overrides.items() if v is not None and k in train_fields}})
    return RunConfig(preset=state["preset"], model=model.validate(), train=train.validate())


def build_model(state: dict):
    """The model (eval mode, CPU) and tokenizer of a checkpoint."""
    from .model import MicroGPT

    model = MicroGPT(ModelConfig(**state["model_config"]))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise LLMBError(f"checkpoint weights do not fit its model ({str(exc).splitlines()[0][:200]})") from None
    return model.eval(), CharTokenizer(state["vocab"])
