"""Model and training settings, the presets, and their validation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from ..errors import LLMBError

PRESETS: dict[str, dict] = {
    "small": dict(n_embd=32, n_layer=3, n_head=4, block_size=96),
    "medium": dict(n_embd=64, n_layer=4, n_head=4, block_size=128),
    "large": dict(n_embd=96, n_layer=6, n_head=6, block_size=256),
    # nanoGPT's shakespeare_char configuration for CPUs.
    "baby": dict(n_embd=128, n_layer=4, n_head=4, block_size=64),
}
DEFAULT_PRESET = "medium"
ACTIVATIONS = ("gelu", "relu")
PRECISIONS = ("auto", "fp32", "bf16")  # see precision.py
MAX_ITERS = 10**9  # the last step a training may reach


class SettingError(LLMBError):
    """A setting out of its range: ``setting`` names it as the code does, ``problem`` says
    what is wrong, so the CLI and the viewer can name it as their users typed it (``named``).
    A problem that involves other settings writes each as ``{name}`` and lists it in ``others``;
    ``problem`` itself has them by their code names."""

    def __init__(self, setting: str, problem: str, others: tuple[str, ...] = ()):
        self.setting, self.others, self._problem = setting, tuple(others), problem
        self.problem = self._filled(str)
        super().__init__(self.named(str))

    def named(self, name: Callable[[str], str]) -> str:
        """The message with each setting it involves called ``name(setting)``."""
        return f"{name(self.setting)} {self._filled(name)}"

    def _filled(self, name: Callable[[str], str]) -> str:
        problem = self._problem
        for other in self.others:
            problem = problem.replace("{" + other + "}", name(other))
        return problem


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64
    block_size: int = 128
    dropout: float = 0.0
    activation: str = "gelu"
    vocab_size: int = 0  # set from the corpus

    def validate(self) -> "ModelConfig":
        _check_int(self, "n_layer", 1, 64)
        _check_int(self, "n_head", 1, 64)
        _check_int(self, "n_embd", 1, 4096)
        _check_int(self, "block_size", 2, 4096)
        if self.n_embd % self.n_head:
            raise SettingError("n_embd", f"({self.n_embd}) must be divisible by {{n_head}} ({self.n_head})",
                               others=("n_head",))
        if not 0.0 <= self.dropout < 1.0:
            raise SettingError("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.activation not in ACTIVATIONS:
            raise SettingError("activation", f"must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        return self


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "shakespeare"
    batch_size: int = 64
    max_iters: int = 5000
    lr: float = 1e-3
    min_lr: float | None = None  # None: lr / 10
    warmup: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 100
    eval_iters: int = 20
    temperature: float = 0.8
    sample_chars: int = 200
    checkpoint_interval: int = 1000  # 0: only at the end (and on Ctrl-C)
    seed: int = 1337
    step_weights: bool = True  # the model's weights with every snapshot (else only in checkpoints)

    @property
    def final_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr

    def validate(self) -> "TrainConfig":
        _check_int(self, "batch_size", 1, 65536)
        _check_int(self, "max_iters", 1, MAX_ITERS)
        _check_int(self, "warmup", 0, 10**9)
        _check_int(self, "eval_interval", 1, 10**9)
        _check_int(self, "eval_iters", 1, 10**6)
        _check_int(self, "sample_chars", 1, 100_000)
        _check_int(self, "checkpoint_interval", 0, 10**9)
        _check_int(self, "seed", 0, 2**63 - 1)
        if not 0 < self.lr <= 1:
            raise SettingError("lr", f"must be in (0, 1], got {self.lr}")
        if self.min_lr is not None and not 0 <= self.min_lr <= self.lr:
            raise SettingError("min_lr", f"must be in [0, {{lr}}={self.lr}], got {self.min_lr}", others=("lr",))
        if not 0 <= self.weight_decay < 1:
            raise SettingError("weight_decay", f"must be in [0, 1), got {self.weight_decay}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise SettingError(name, f"must be in [0, 1), got {getattr(self, name)}")
        if not self.grad_clip > 0:
            raise SettingError("grad_clip", f"must be > 0, got {self.grad_clip}")
        if not 0 < self.temperature <= 10:
            raise SettingError("temperature", f"must be in (0, 10], got {self.temperature}")
        return self


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run is made from: its preset, model and training settings."""

    preset: str = DEFAULT_PRESET
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def as_params(self) -> dict[str, object]:
        """Flat settings, as logged to MLflow params (vocab_size comes from the corpus)."""
        params: dict[str, object] = {"preset": self.preset}
        params.update(
            (k, v) for k, v in dataclasses.asdict(self.model).items() if k != "vocab_size"
        )
        params.update(dataclasses.asdict(self.train))
        params["min_lr"] = self.train.final_lr
        return params


MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)} - {"vocab_size"}
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def build_config(preset: str = DEFAULT_PRESET, **overrides) -> RunConfig:
    """A validated RunConfig from a preset plus overrides; ``None`` overrides are ignored."""
    if preset not in PRESETS:
        raise LLMBError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - MODEL_FIELDS - TRAIN_FIELDS
    if unknown:
        raise LLMBError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    model = ModelConfig(
        **{**PRESETS[preset], **{k: v for k, v in overrides.items() if k in MODEL_FIELDS}}
    )
    train = TrainConfig(**{k: v for k, v in overrides.items() if k in TRAIN_FIELDS})
    return RunConfig(preset=preset, model=model.validate(), train=train.validate())


def _check_int(obj, name: str, low: int, high: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(name, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise SettingError(name, f"must be between {low} and {high}, got {value}")
