"""Options shared by several ``llmb`` commands."""

from __future__ import annotations

import click

from .config import ModelConfig, TrainConfig
from .run_layout import DEFAULT_EXPERIMENT

tracking_uri_option = click.option(
    "--tracking-uri", metavar="URI",
    help="MLflow tracking store. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here.")
experiment_option = click.option(
    "--experiment", default=DEFAULT_EXPERIMENT, show_default=True, help="MLflow experiment name.")


register_option = click.option(
    "--register", metavar="NAME", help="Also register the final checkpoint as a version of model NAME.")

# (option, type, help, default shown) for the settings that override a preset or TrainConfig.
SETTINGS = [
    ("--max-iters", int, "Training steps.", TrainConfig.max_iters),
    ("--eval-interval", int, "Evaluate and snapshot every N steps.", TrainConfig.eval_interval),
    ("--eval-iters", int, "Batches per loss estimate.", TrainConfig.eval_iters),
    ("--batch-size", int, "Sequences per step.", TrainConfig.batch_size),
    ("--block-size", int, "Context length in characters.", "the preset's"),
    ("--n-layer", int, "Transformer blocks.", "the preset's"),
    ("--n-head", int, "Attention heads per block.", "the preset's"),
    ("--n-embd", int, "Embedding width.", "the preset's"),
    ("--dropout", float, "Dropout rate.", ModelConfig.dropout),
    ("--lr", float, "Peak learning rate, decayed to lr/10.", TrainConfig.lr),
    ("--warmup", int, "Linear warm-up steps.", TrainConfig.warmup),
    ("--temperature", float, "Sampling temperature of snapshots.", TrainConfig.temperature),
    ("--checkpoint-interval", int, "Checkpoint every N steps (0: only at the end); "
     "checkpoints are also written at the end and on Ctrl-C.", TrainConfig.checkpoint_interval),
    ("--seed", int, "Random seed.", TrainConfig.seed),
]


def setting_options(command=None, *, inherited: bool = False):
    """The SETTINGS options; with ``inherited``, defaults come from a checkpoint."""
    def add(command):
        for flag, kind, text, default in reversed(SETTINGS):
            shown = "the checkpoint's" if inherited else default
            command = click.option(flag, type=kind, help=f"{text}  [default: {shown}]")(command)
        return command

    return add(command) if command else add


def fmt_loss(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def echo_table(rows: list[tuple]) -> None:
    """Print rows as left-aligned columns; the first row is the header."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
