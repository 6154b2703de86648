"""What a stored model may be before it is built: its stored settings checked, its size counted
and each stored array's shape compared with what those settings make, all before ``MicroGPT``
allocates anything. A step's weights or a checkpoint may hold any settings anyone wrote, and a
model of 64 layers 4096 wide would take tens of GB to build.

Every reader of stored weights (the playground, ``llmb generate``, ``llmb resume``, the pyfunc
model) goes through ``check`` and then ``build``. Torch-free until ``build``.
"""

from __future__ import annotations

import math
from dataclasses import fields

from .config import ModelConfig, SettingError
from ..numbers import env_count
from ..errors import LLMBError, shown

# 140 times the largest preset (baby, 0.8 M) and more than any model worth training on a CPU:
# 0.4 GB of float32 to generate, about 1.6 GB to resume (AdamW keeps two more copies).
DEFAULT_MAX_PARAMS = 100_000_000
MAX_PARAMS_ENV = "LLMB_MAX_PARAMS"  # the bound of the pyfunc model and the CLI's default
BYTES_PER_PARAM = 16  # a checkpoint: float32 weights and AdamW's two moments, with room to spare
CHECKPOINT_EXTRA_BYTES = 16 * 2**20  # vocabulary, random state, embedding basis, settings


def env_max_params() -> int:
    """``LLMB_MAX_PARAMS``, else DEFAULT_MAX_PARAMS."""
    return env_count(MAX_PARAMS_ENV, DEFAULT_MAX_PARAMS, "parameters")


def checkpoint_bytes(max_params: int) -> int:
    """The largest checkpoint file a model of at most ``max_params`` parameters makes."""
    return BYTES_PER_PARAM * max_params + CHECKPOINT_EXTRA_BYTES


def check_checkpoint_size(size: int, label: str, max_params: int, raise_with: str | None = None) -> None:
    """Refuse a checkpoint of ``size`` bytes that no model of at most ``max_params`` makes."""
    if size > checkpoint_bytes(max_params):
        raise LLMBError(f"{label} is {size / 2**20:,.0f} MB, more than a model of at most {max_params:,} "
                        "parameters makes" + (f" ({raise_with} allows more)" if raise_with else ""))


def stored_config(given, label: str) -> ModelConfig:
    """The ModelConfig a stored dict describes (keys it does not know are ignored); anything
    else is an LLMBError naming ``label``, never a setting the user did not give."""
    if not isinstance(given, dict):
        raise LLMBError(f"{label} is malformed: its model settings are {shown(given)}, not settings")
    known = {f.name: f for f in fields(ModelConfig)}
    values = {k: v for k, v in given.items() if k in known}
    for name, value in values.items():
        wanted = {"int": int, "float": (int, float), "str": str}[str(known[name].type)]
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise LLMBError(f"{label} is malformed: its stored {name} is {shown(value)}, "
                            f"not {'text' if wanted is str else 'a number'}")
    if not isinstance(values.get("vocab_size"), int) or values["vocab_size"] < 1:
        raise LLMBError(f"{label} is malformed: its stored vocab_size is {shown(values.get('vocab_size'))}")
    try:
        return ModelConfig(**values).validate()
    except SettingError as exc:
        raise LLMBError(f"{label} is malformed: its stored {exc.setting} {exc.problem}") from None


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every array of ``MicroGPT(config).state_dict()``, in its order."""
    c, v = config.n_embd, config.vocab_size
    shapes = {"tok_emb.weight": (v, c), "pos_emb.weight": (config.block_size, c)}
    for i in range(config.n_layer):
        shapes.update({f"blocks.{i}.ln_1.weight": (c,), f"blocks.{i}.attn.qkv.weight": (3 * c, c),
                       f"blocks.{i}.attn.proj.weight": (c, c), f"blocks.{i}.ln_2.weight": (c,),
                       f"blocks.{i}.mlp.fc.weight": (4 * c, c), f"blocks.{i}.mlp.proj.weight": (c, 4 * c)})
    shapes.update({"ln_f.weight": (c,), "lm_head.weight": (v, c)})
    return shapes


def parameter_count(config: ModelConfig) -> int:
    """``MicroGPT(config).num_parameters()``, without building it (the head shares the token
    embedding)."""
    return sum(math.prod(shape) for name, shape in expected_shapes(config).items() if name != "lm_head.weight")


def check(given, shapes: dict, label: str, max_params: int, raise_with: str | None = None) -> ModelConfig:
    """The ModelConfig of stored settings ``given`` whose arrays, as stored, have ``shapes``
    (name -> shape), once its size is within ``max_params`` and every array has the shape the
    settings make; else a one-line LLMBError naming ``label`` (and ``raise_with``, how to
    allow more)."""
    config = stored_config(given, label)
    count = parameter_count(config)
    if count > max_params:
        how = f" ({raise_with} allows more)" if raise_with else ""
        raise LLMBError(f"{label}: a model of {count:,} parameters ({config.n_layer} layers {config.n_embd} wide, "
                        f"{count * 4 / 2**30:.1f} GB to load), more than the {max_params:,} that may be loaded here{how}")
    expected = expected_shapes(config)
    stored = {name: tuple(shape) for name, shape in shapes.items()}
    for name in [*expected, *stored]:
        if stored.get(name) != expected.get(name):
            what = f"has no {name}" if name not in stored else (
                f"holds {name}, which its model has not" if name not in expected else
                f"holds {name} of shape {list(stored[name])}, where its settings make {list(expected[name])}")
            raise LLMBError(f"{label} does not fit its own model settings: it {what}")
    return config


def build(config: ModelConfig, state: dict):
    """A model of ``config`` (checked by ``check``) holding ``state`` (arrays or tensors), in
    eval mode on the CPU."""
    from .model import MicroGPT

    return load_into(MicroGPT(config).eval(), state)


def load_into(model, state: dict):
    """``model`` holding ``state``; a state that does not fit is a one-line LLMBError."""
    import torch

    try:
        model.load_state_dict({name: torch.as_tensor(value) for name, value in state.items()})
    except (RuntimeError, KeyError, TypeError) as exc:
        raise LLMBError(f"the stored weights do not fit their model ({str(exc).splitlines()[0][:200]})") from None
    return model
