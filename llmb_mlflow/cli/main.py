"""The ``llmb`` command line: a thin layer over the library."""

from __future__ import annotations

import os
import sys
import time

import click

from ..training.config import DEFAULT_PRESET, PRESETS
from ..training.corpus import BUNDLED, MAX_CORPUS_BYTES
from ..errors import LLMBError, redact
from ..run_layout import EVAL_METRICS, PURPOSE_TAG, STYLE_TRANSFER, TRAIN_LOSS, VAL_LOSS, mlflow_ui_path
from .options import (
    OUTPUT, SettingsCommand, echo_table, experiment_option, fmt_loss, precision_option, report, run_options,
    setting_options, tracking_uri_option,
)

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="llmb-mlflow")
def cli():
    """LLMBreaker: train a tiny character-level GPT and watch it learn, tracked in MLflow."""


@cli.command(cls=SettingsCommand)
@click.option("--dataset", default="shakespeare", show_default=True, metavar="NAME|PATH",
              help=f"Bundled corpus ({', '.join(BUNDLED)}) or a UTF-8 .txt file "
                   f"(at most {MAX_CORPUS_BYTES // 2**20} MB).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True,
              help="Model size: " + "; ".join(
                  f"{name} {p['n_layer']}x{p['n_embd']} ctx {p['block_size']}" for name, p in PRESETS.items()))
@setting_options
@run_options
@precision_option()
@click.option("--no-tracking", is_flag=True, help="Train without MLflow: no run is created.")
@click.option("--style-transfer", is_flag=True,
              help="Mark the run as a style transfer (tag llmb.purpose): training on a text to imitate it, "
                   "as the viewer's Style Transfer tab starts.")
def train(dataset, preset, experiment, run_name, tracking_uri, register, no_system_metrics, threads, precision,
          no_tracking, style_transfer, **overrides):
    """Train a MicroGPT, logging every step and a snapshot per evaluation to MLflow."""
    from .. import session

    if register and no_tracking:
        raise click.UsageError("--register needs tracking; drop --no-tracking")
    tracking = None if no_tracking else session.Tracking(
        tracking_uri, experiment, register, "llmb train", not no_system_metrics)
    config, data, tracking = session.prepare(preset, dataset, overrides, tracking)
    from ..training.trainer import Trainer  # torch loads while the tracking helper loads MLflow

    with session.data_parallel() as parallel:
        trainer = Trainer(config, data, device=session.device(parallel), precision_choice=precision)
        tags = {PURPOSE_TAG: STYLE_TRANSFER} if style_transfer else None
        report(session.run(trainer, tracking, run_name, tags, parallel=parallel, out=OUTPUT, threads=threads),
               register)


@cli.group()
def runs():
    """List, inspect and control training runs."""


@runs.command("list")
@experiment_option
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@tracking_uri_option
def runs_list(experiment, limit, tracking_uri):
    """Training runs, newest first: id, name, status, steps and last losses."""
    from ..library.control import trainer_state
    from ..library.reader import RunReader

    summaries = RunReader(tracking_uri).runs(experiment, max_results=limit)
    if not summaries:
        click.echo(f"No LLMBreaker runs in experiment {experiment!r}.")
        return
    rows = [("RUN ID", "NAME", "STATUS", "STEP", "TRAIN LOSS", "VAL LOSS", "STARTED")]
    for s in summaries:
        rows.append((
            s.run_id, s.run_name, trainer_state(s.tags, s.status, s.start_time),
            f"{s.last_step}/{s.max_iters or '?'}",
            fmt_loss(s.last_value(TRAIN_LOSS)), fmt_loss(s.last_value(VAL_LOSS)),
            time.strftime("%Y-%m-%d %H:%M", time.localtime((s.start_time or 0) / 1000)),
        ))
    echo_table(rows)


def _control_command(command: str, text: str):
    @runs.command(command, help=text)
    @click.argument("run_id")
    @tracking_uri_option
    def control(run_id, tracking_uri):
        from ..library import control as channel
        from ..store.client import client

        channel.send(client(tracking_uri), run_id, command)
        click.echo(f"Asked run {run_id} to {command}; the trainer acts on it within about a second.")

    return control


for _command, _text in (
    ("pause", "Pause a running training (its run stays RUNNING, shown as paused)."),
    ("resume", "Resume a paused training."),
    ("stop", "Stop a training after its current step; it checkpoints and ends KILLED."),
    ("step", "Let a paused training take exactly one step."),
    ("checkpoint", "Ask a running training to write a checkpoint now."),
):
    _control_command(_command, _text)


@runs.command("mark-failed")
@click.argument("run_id")
@click.option("--force", is_flag=True, help="Even if its trainer still seems alive.")
@tracking_uri_option
def runs_mark_failed(run_id, force, tracking_uri):
    """End a crashed training's run as FAILED.

    A RUNNING run is taken for crashed when its trainer's process is gone from this machine, or
    when it has not reported for LLMB_STALE_SECONDS (default 60); listings show such runs as
    'RUNNING (crashed: ...)' or 'RUNNING (stale: ...)'. Its metrics, snapshots and checkpoints
    stay: resume it from its last checkpoint with 'llmb models save' and 'llmb resume'."""
    from ..library.control import mark_failed
    from ..store.client import client

    why = mark_failed(client(tracking_uri), run_id, force)
    click.echo(f"Run {run_id} is marked FAILED ({why}); everything it logged is kept.")


@runs.command("sync")
@click.option("--tracking-uri", metavar="URI",
              help="Send to this store instead of the one each run was logged to (the store moved).")
def runs_sync(tracking_uri):
    """Send training data kept on this machine because the tracking store was unreachable when
    a training ended (kept under $LLMB_SPOOL_DIR, else ~/.local/share/llmbreaker/spool), and
    end those runs with the status their trainings ended with."""
    from ..tracking.mlflow_tracker import send_spooled
    from ..tracking.spool import pending, spool_root

    folders = pending()
    if not folders:
        click.echo(f"Nothing to send: no unsent training data in {spool_root()}.")
        return
    for folder in folders:
        spooled = send_spooled(folder, tracking_uri)
        click.echo(f"Sent {spooled.describe()} of run {spooled.run_id} to "
                   f"{tracking_uri or spooled.tracking_uri}; it is {spooled.status}.")


@runs.command("show")
@click.argument("run_id")
@tracking_uri_option
def runs_show(run_id, tracking_uri):
    """A run's settings, snapshot steps and its latest sample."""
    from ..library.control import trainer_state
    from ..library.reader import RunReader

    reader = RunReader(tracking_uri)
    run = reader.run(run_id)
    click.echo(f"Run {run.run_id} ({run.run_name}): {trainer_state(run.tags, run.status, run.start_time)}, "
               f"step {run.last_step}/{run.max_iters or '?'}")
    if reader.uri.startswith(("http://", "https://")):
        click.echo(f"In MLflow's UI: {redact(reader.uri).rstrip('/')}/{mlflow_ui_path(run.experiment_id, run.run_id)}")
    for key in (TRAIN_LOSS, *EVAL_METRICS):
        if key in run.latest:
            step, value = run.latest[key]
            click.echo(f"  {key}: {value:.4f} at step {step}")
    click.echo("Params:")
    for key in sorted(run.params):
        click.echo(f"  {key} = {run.params[key]}")
    checkpoints = reader.checkpoints(run_id, run=run)
    click.echo(f"Checkpoints ({len(checkpoints)}): {_step_list([c.step for c in checkpoints])}")
    if checkpoints:
        click.echo(f"  latest: step {checkpoints[-1].step}, logged model models:/{checkpoints[-1].model_id}")
    steps = reader.snapshot_steps(run_id, run=run)
    click.echo(f"Snapshots ({len(steps)}): {_step_list(steps)}")
    if steps:
        snap = reader.snapshot(run_id, steps[-1])
        click.echo(f"Sample at step {snap.step} (temperature {snap.temperature:g}):")
        click.echo(snap.prompt + snap.sample)


def _step_list(steps: list[int]) -> str:
    if len(steps) <= 8:
        return ", ".join(map(str, steps)) or "none"
    return ", ".join(map(str, steps[:4])) + ", ..., " + ", ".join(map(str, steps[-2:]))


def _add_model_commands() -> None:
    from .export import export
    from .models import generate, models, resume
    from .viewer import dash, demo

    for command in (models, resume, generate, dash, demo, export):
        cli.add_command(command)


_add_model_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one line on stderr and a non-zero exit."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    try:
        code = cli.main(args=argv, prog_name="llmb", standalone_mode=False)
    except LLMBError as exc:
        click.echo(f"Error: {exc}", err=True)
        code = EXIT_ERROR
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"Error: {exc.format_message().rstrip('.')}{hint}", err=True)
        code = EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        code = exc.exit_code
    except (KeyboardInterrupt, click.Abort):
        code = EXIT_INTERRUPTED
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get("LLMB_DEBUG"):
            raise
        click.echo(redact(f"Error: internal error: {type(exc).__name__}: {exc} "
                          "(set LLMB_DEBUG=1 to see the traceback)"), err=True)
        code = EXIT_ERROR
    sys.exit(code if isinstance(code, int) else 0)
