"""What several ``llmb`` commands share: options, and printing tables and how a training ended."""

from __future__ import annotations

import os

import click

from ..training.config import PRECISIONS, SETTINGS, Setting, SettingError
from ..errors import LLMBError, redact
from ..run_layout import DEFAULT_EXPERIMENT, EVAL_TRAIN_LOSS, VAL_LOSS
from ..session import Output
from ..training.shapes import DEFAULT_MAX_PARAMS, MAX_PARAMS_ENV

tracking_uri_option = click.option(
    "--tracking-uri", metavar="URI",
    help="MLflow tracking store. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here.")
experiment_option = click.option(
    "--experiment", default=DEFAULT_EXPERIMENT, show_default=True, help="MLflow experiment name.")


system_metrics_option = click.option(
    "--no-system-metrics", is_flag=True,
    help="Do not log CPU and memory every 10 s (MLflow's System metrics tab).")

threads_option = click.option(
    "--threads", type=click.IntRange(1, 1024), metavar="N",
    help="Compute threads.  [default: $OMP_NUM_THREADS, else the cores divided among the "
         "LLMBreaker trainings running on this machine, rechecked every 5 s]")


def precision_option(inherited: bool = False):
    """``--precision``; with ``inherited``, the default is the checkpoint's."""
    shown = ("the checkpoint's (auto for older checkpoints, and for bf16 where the hardware "
             "lacks it)") if inherited else "auto"
    return click.option(
        "--precision", type=click.Choice(PRECISIONS), default=None if inherited else "auto",
        help="Arithmetic: bf16 mixed precision (matrix products in bfloat16; weights, optimizer "
             "and loss in float32) or fp32 throughout. auto: bf16 where the hardware multiplies "
             f"it natively (CPUs with AMX, CUDA GPUs from Ampere on), else fp32.  [default: {shown}]")


max_params_option = click.option(
    "--max-params", type=click.IntRange(min=1), default=DEFAULT_MAX_PARAMS, envvar=MAX_PARAMS_ENV, show_envvar=True,
    metavar="N", help="Refuse a stored model of more than N parameters, before building it (its stored settings "
                      "say its size; it takes 4 bytes a parameter, and resuming it about 16). The presets have "
                      f"under 1 M.  [default: {DEFAULT_MAX_PARAMS:,}]")

run_name_option = click.option(
    "--run-name", help="MLflow run name.  [default: a generated one; for resume, MODEL-vN (resumed)]")

register_option = click.option(
    "--register", metavar="NAME", help="Also register the final checkpoint as a version of model NAME.")


def run_options(command):
    """The options of a command that trains into a run: where it is recorded and how it runs."""
    for option in reversed((experiment_option, run_name_option, tracking_uri_option, register_option,
                            system_metrics_option, threads_option)):
        command = option(command)
    return command


# The settings ``llmb train`` and ``llmb resume`` take as options, in the order --help lists them.
SETTING_OPTIONS = ("step_weights", "max_iters", "eval_interval", "eval_iters", "batch_size", "block_size",
                   "n_layer", "n_head", "n_embd", "dropout", "lr", "warmup", "temperature",
                   "checkpoint_interval", "seed")


class SettingsCommand(click.Command):
    """A command whose bad settings (``config.SettingError``) are named by the options its user
    typed, also when the value came from a preset; a setting it has no option for keeps its
    code name."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingError as exc:
            flags = {p.name: max(p.opts, key=len) for p in self.params if isinstance(p, click.Option)}
            raise LLMBError(exc.named(lambda setting: flags.get(setting, setting))) from None


def setting_option(setting: Setting, inherited: bool = False):
    """The option of a setting (a flag pair for a yes/no one), its help and default from its field;
    with ``inherited``, the default is a checkpoint's."""
    if inherited:
        shown = "the checkpoint's"
    elif setting.kind is bool:
        shown = setting.option if setting.default else f"--no-{setting.option[2:]}"
    else:
        shown = "the preset's" if setting.from_preset else setting.default
    text = f"{setting.help}  [default: {shown}]"
    if setting.kind is bool:
        return click.option(f"{setting.option}/--no-{setting.option[2:]}", default=None, help=text)
    return click.option(setting.option, type=setting.kind, help=text)


def setting_options(command=None, *, inherited: bool = False):
    """The SETTING_OPTIONS; with ``inherited``, defaults come from a checkpoint."""
    def add(command):
        for name in reversed(SETTING_OPTIONS):
            command = setting_option(SETTINGS[name], inherited)(command)
        return command

    return add(command) if command else add


def fmt_loss(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def echo_table(rows: list[tuple]) -> None:
    """Print rows as left-aligned columns; the first row is the header."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def _warn(text: str) -> None:
    click.echo(text, err=True)


OUTPUT = Output(click.echo, _warn)


def report(outcome, register: str | None = None) -> None:
    """Print how a training ended, then register its last checkpoint as ``register``; a stopped
    one registers nothing and exits as interrupted (the training said where it stopped)."""
    if outcome.stopped or outcome.rank:
        if outcome.interrupted:
            raise KeyboardInterrupt
        return
    losses = outcome.losses
    click.echo(f"Done: step {outcome.step}, val loss {losses.get(VAL_LOSS, float('nan')):.4f}, "
               f"train loss {losses.get(EVAL_TRAIN_LOSS, float('nan')):.4f}.")
    if outcome.run_id:
        click.echo(f"Run {outcome.run_id} ({outcome.run_name}) in experiment {outcome.experiment!r}:")
        click.echo(redact(f"  inspect: llmb runs show {outcome.run_id}" + _uri_flag(outcome)))
        click.echo(redact(f"  browse:  {_mlflow_ui_command(outcome.uri)}"))
    if register and outcome.run_id:
        from ..session import register as register_model

        version = register_model(outcome, register)
        click.echo(f"Registered step {version.step} as model {version.ref} (models:/{version.ref}).")


def _uri_flag(outcome) -> str:
    return "" if outcome.default_store else f" --tracking-uri {outcome.uri}"


def _mlflow_ui_command(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    here = os.path.abspath("mlflow.db")
    if uri in ("sqlite:///mlflow.db", f"sqlite:///{here}") and not os.environ.get("MLFLOW_TRACKING_URI"):
        return "mlflow ui   (in this folder)"
    return f"mlflow ui --backend-store-uri {uri}"
