"""Model and training settings, each with what its users are told about it (help, label, range),
the presets, and their validation: the command line's options and the viewer's form are made
from these fields."""

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
    # What `llmb demo` trains: baby's context, smaller, so its first words come within a minute.
    "demo": dict(n_embd=96, n_layer=3, n_head=4, block_size=64),
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


def setting(default, help: str = "", *, low=None, high=None, ends: str = "[]", choices: tuple = (),
            label: str | None = None):
    """A settings field: ``help`` for its command-line option, ``label`` for the viewer's form,
    its range from ``low`` to ``high`` (``ends``: "[]" includes both, "(" or ")" leaves one out)
    or its ``choices``."""
    return field(default=default, metadata=dict(help=help, low=low, high=high, ends=ends,
                                                choices=choices, label=label))


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int = setting(4, "Transformer blocks.", low=1, high=64)
    n_head: int = setting(4, "Attention heads per block.", low=1, high=64)
    n_embd: int = setting(64, "Embedding width.", low=1, high=4096)
    block_size: int = setting(128, "Context length in characters.", low=2, high=4096, label="context")
    dropout: float = setting(0.0, "Dropout rate.", low=0, high=1, ends="[)", label="dropout")
    activation: str = setting("gelu", choices=ACTIVATIONS)
    vocab_size: int = 0  # set from the corpus

    def validate(self) -> "ModelConfig":
        _check_each(self)
        if self.n_embd % self.n_head:
            raise SettingError("n_embd", f"({self.n_embd}) must be divisible by {{n_head}} ({self.n_head})",
                               others=("n_head",))
        return self


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "shakespeare"
    batch_size: int = setting(64, "Sequences per step.", low=1, high=65536, label="batch")
    max_iters: int = setting(5000, "Training steps.", low=1, high=MAX_ITERS, label="steps")
    lr: float = setting(1e-3, "Peak learning rate, decayed to lr/10.", low=0, high=1, ends="(]",
                        label="learning rate")
    min_lr: float | None = None  # None: lr / 10
    warmup: int = setting(100, "Linear warm-up steps.", low=0, high=10**9)
    weight_decay: float = setting(0.1, low=0, high=1, ends="[)")
    beta1: float = setting(0.9, low=0, high=1, ends="[)")
    beta2: float = setting(0.99, low=0, high=1, ends="[)")
    grad_clip: float = setting(1.0, low=0, ends="(")
    eval_interval: int = setting(100, "Evaluate and snapshot every N steps.", low=1, high=10**9,
                                 label="snapshot every")
    eval_iters: int = setting(20, "Batches per loss estimate.", low=1, high=10**6)
    temperature: float = setting(0.8, "Sampling temperature of snapshots.", low=0, high=10, ends="(]",
                                 label="temperature")
    sample_chars: int = setting(200, low=1, high=100_000)
    checkpoint_interval: int = setting(
        1000, "Checkpoint every N steps (0: only at the end); checkpoints are also written at the end "
              "and on Ctrl-C.", low=0, high=10**9)
    seed: int = setting(1337, "Random seed.", low=0, high=2**63 - 1)
    step_weights: bool = setting(
        True, "Store the model's weights at every evaluation, so the viewer's Token Playground can use "
              "the model at any step (a medium model: about 0.4 MB each); with --no-step-weights only "
              "checkpoints keep them.")

    @property
    def final_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr

    def validate(self) -> "TrainConfig":
        _check_each(self)
        if self.min_lr is not None and not 0 <= self.min_lr <= self.lr:
            raise SettingError("min_lr", f"must be in [0, {{lr}}={self.lr}], got {self.min_lr}", others=("lr",))
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
        params["min_lr"] = float(f"{self.train.final_lr:.12g}")  # lr / 10 without float noise (3e-3 / 10)
        return params


_KINDS = {"int": int, "float": float, "float | None": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Setting:
    """One setting as its users meet it, made from its field of ModelConfig or TrainConfig."""

    name: str
    kind: type  # int, float, str or bool
    default: object
    help: str
    label: str | None  # in the viewer's form
    low: float | None
    high: float | None
    ends: str
    choices: tuple

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def from_preset(self) -> bool:
        """Whether a preset gives its value (else its default does)."""
        return self.name in PRESETS[DEFAULT_PRESET]

    def check(self, value) -> None:
        """Refuse ``value`` (a SettingError) if it is not of this setting's kind or range."""
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingError(self.name, f"must be an integer, got {value!r}")
            if not self.low <= value <= self.high:
                raise SettingError(self.name, f"must be between {self.low} and {self.high}, got {value}")
        elif self.choices and value not in self.choices:
            raise SettingError(self.name, f"must be one of {', '.join(self.choices)}, got {value!r}")
        elif self.low is not None and not self._within(value):
            if self.high is None:
                raise SettingError(self.name, f"must be {'>' if self.ends == '(' else '>='} {self.low}, got {value}")
            raise SettingError(self.name, f"must be in {self.ends[0]}{self.low}, {self.high}{self.ends[-1]}, "
                                          f"got {value}")

    def _within(self, value) -> bool:
        above = self.low < value if self.ends.startswith("(") else self.low <= value
        if self.high is None:
            return above
        return above and (value < self.high if self.ends.endswith(")") else value <= self.high)


def _setting(f: dataclasses.Field) -> Setting:
    described = {"help": "", "label": None, "low": None, "high": None, "ends": "[]", "choices": (), **f.metadata}
    return Setting(f.name, _KINDS[str(f.type)], f.default, **described)


MODEL_SETTINGS = {f.name: _setting(f) for f in dataclasses.fields(ModelConfig) if f.name != "vocab_size"}
TRAIN_SETTINGS = {f.name: _setting(f) for f in dataclasses.fields(TrainConfig)}
SETTINGS: dict[str, Setting] = {**MODEL_SETTINGS, **TRAIN_SETTINGS}


def build_config(preset: str = DEFAULT_PRESET, **overrides) -> RunConfig:
    """A validated RunConfig from a preset plus overrides; ``None`` overrides are ignored."""
    if preset not in PRESETS:
        raise LLMBError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return merge(preset, PRESETS[preset], {}, **overrides)


def merge(preset: str, model: dict, train: dict, **overrides) -> RunConfig:
    """A validated RunConfig of ``model`` and ``train`` settings (a preset's, or a checkpoint's)
    with ``overrides`` over them; ``None`` overrides are ignored, unknown ones refused."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(SETTINGS)
    if unknown:
        raise LLMBError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    model = ModelConfig(**{**model, **{k: v for k, v in overrides.items() if k in MODEL_SETTINGS}})
    train = TrainConfig(**{**{k: v for k, v in train.items() if k in TRAIN_SETTINGS},
                           **{k: v for k, v in overrides.items() if k in TRAIN_SETTINGS}})
    return RunConfig(preset=preset, model=model.validate(), train=train.validate())


def _check_each(config) -> None:
    """Check every field of ``config`` that is a setting against its own kind and range."""
    for f in dataclasses.fields(config):
        if f.name in SETTINGS:
            SETTINGS[f.name].check(getattr(config, f.name))
