"""What a training started from a viewer may cost the machine it runs on, and what it may read.

A viewer can be reached by people who may not own the machine, and the store it reads may hold
anything anyone wrote to it. So the viewer checks a training against these limits before
starting it, and ``llmb resume --viewer-limits`` checks again once the checkpoint's own
settings are known. The command line has no such limits: its user owns the machine.
"""

from __future__ import annotations

from pathlib import Path

from ..training.corpus import BUNDLED
from ..errors import LLMBError, shown
from ..run_layout import PARAM_PRESET
from ..numbers import whole_number

MAX_CHARS_PER_STEP = 32_768  # batch × context: memory grows with it
MAX_RUN_SNAPSHOTS = 10_000  # the store grows by ~70 KB per snapshot (medium)
MAX_RUN_CHECKPOINTS = 1_000  # ~2.5 MB each (medium)
MAX_EVAL_ITERS = 200  # batches per loss estimate
MAX_SAMPLE_CHARS = 2_000  # characters per snapshot sample
MAX_PARAMETERS = 20_000_000  # the large preset has 0.7 M
# A model a viewer loads (the playground): any a training started here may have (about
# 12 x layers x width^2, plus embeddings of 4096 positions and of up to 5,000 characters);
# 128 MB in float32. A step's weights file (at most 64 MB of float16) holds no more anyway.
MAX_LOADED_PARAMETERS = 32_000_000


def checkpoint_interval(steps: int, interval: int) -> int:
    """``interval``, widened so that ``steps`` steps make at most MAX_RUN_CHECKPOINTS."""
    return interval and max(interval, -(-steps // (MAX_RUN_CHECKPOINTS - 1)))


def check_cost(config, steps: int | None = None) -> None:
    """Refuse a training that would cost more than a viewer may ask; ``steps``: those it will
    take (all of ``max_iters`` for a new one)."""
    train, model = config.train, config.model
    steps = train.max_iters if steps is None else steps
    if train.batch_size * model.block_size > MAX_CHARS_PER_STEP:
        raise LLMBError(f"batch × context is {train.batch_size} × {model.block_size} = "
                        f"{train.batch_size * model.block_size} characters per step; a training started "
                        f"here may use at most {MAX_CHARS_PER_STEP}")
    snapshots = steps // train.eval_interval + 1
    if snapshots > MAX_RUN_SNAPSHOTS:
        raise LLMBError(f"steps / snapshot every makes {snapshots} snapshots; a training started "
                        f"here may make at most {MAX_RUN_SNAPSHOTS}")
    checkpoints = (steps // train.checkpoint_interval if train.checkpoint_interval else 0) + 1
    if checkpoints > MAX_RUN_CHECKPOINTS:
        raise LLMBError(f"{steps} steps with a checkpoint every {train.checkpoint_interval} make "
                        f"{checkpoints} checkpoints; a training started here may make at most "
                        f"{MAX_RUN_CHECKPOINTS}")
    if train.eval_iters > MAX_EVAL_ITERS or train.sample_chars > MAX_SAMPLE_CHARS:
        raise LLMBError(f"{train.eval_iters} batches per evaluation and {train.sample_chars} characters "
                        f"per sample; a training started here may use at most {MAX_EVAL_ITERS} and "
                        f"{MAX_SAMPLE_CHARS}")
    parameters = 12 * model.n_layer * model.n_embd ** 2
    if parameters > MAX_PARAMETERS:
        raise LLMBError(f"a model of {model.n_layer} layers {model.n_embd} wide has about {parameters:,} "
                        f"parameters; a training started here may have at most {MAX_PARAMETERS:,}")


def corpus(spec, ref: str | None = None) -> str:
    """The corpus a training started from a viewer may read: a bundled one, or a file that
    viewer stored (``uploads``); its name, or its path."""
    from .uploads import upload_at

    if spec in BUNDLED:
        return spec
    try:
        return str(upload_at(spec).path)
    except LLMBError:
        name = Path(spec).name if isinstance(spec, str) else shown(spec)
        what = f"{ref} was trained on" if ref else "the corpus is"
        raise LLMBError(f"{what} {name!r}, which is neither a bundled corpus nor a file uploaded here"
                        + (f"; continue it with `llmb resume {ref}` where that file is" if ref else "")) from None


RESUMED_SETTINGS = ("batch_size", "block_size", "eval_interval", "checkpoint_interval")


def resume_args(library, ref: str, more_steps: int, experiment: str) -> tuple[list[str], object]:
    """The ``llmb resume`` arguments that continue a saved version for ``more_steps`` in a new
    run, and the version. Its run's settings are checked against these limits for a quick
    refusal; ``--viewer-limits`` makes the training check them again, and its corpus, against
    what its checkpoint really holds (the store may hold anything anyone wrote to it)."""
    from ..training.config import DEFAULT_PRESET, MAX_ITERS, PRESETS, TrainConfig, build_config

    version = library.resolve(ref)
    params = library.reader.run(version.run_id).params
    settings = {key: whole_number(params.get(key)) for key in RESUMED_SETTINGS}
    settings = {key: value for key, value in settings.items() if value is not None}
    interval = checkpoint_interval(more_steps, settings.get("checkpoint_interval", TrainConfig.checkpoint_interval))
    preset = params.get(PARAM_PRESET) if params.get(PARAM_PRESET) in PRESETS else DEFAULT_PRESET
    if version.step + more_steps > MAX_ITERS:
        raise LLMBError(f"the number of more steps to train ({more_steps:,}) would take {version.ref} from its "
                        f"step {version.step:,} past step {MAX_ITERS:,}, the last a training may reach; "
                        f"give at most {MAX_ITERS - version.step:,}")
    check_cost(build_config(preset, max_iters=version.step + more_steps,
                            **{**settings, "checkpoint_interval": interval}), more_steps)
    return ["resume", "--viewer-limits", f"--max-iters={version.step + more_steps}",
            f"--experiment={experiment}", f"--checkpoint-interval={interval}", "--", version.ref], version

