"""The ``llmb`` command line: a thin layer over the library."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import click

from .config import DEFAULT_PRESET, PRESETS
from .corpus import BUNDLED, MAX_CORPUS_BYTES
from .errors import LLMBError, redact
from .run_layout import EVAL_METRICS, EVAL_TRAIN_LOSS, TRAIN_LOSS, VAL_LOSS, WORLD_SIZE_TAG
from .cli_options import (
    echo_table, experiment_option, fmt_loss, register_option, setting_options, tracking_uri_option,
)

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="llmb-mlflow")
def cli():
    """LLMBreaker: train a tiny character-level GPT and watch it learn, tracked in MLflow."""


@cli.command()
@click.option("--dataset", default="shakespeare", show_default=True, metavar="NAME|PATH",
              help=f"Bundled corpus ({', '.join(BUNDLED)}) or a UTF-8 .txt file "
                   f"(at most {MAX_CORPUS_BYTES // 2**20} MB).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True,
              help="Model size: " + "; ".join(
                  f"{name} {p['n_layer']}x{p['n_embd']} ctx {p['block_size']}" for name, p in PRESETS.items()))
@setting_options
@experiment_option
@click.option("--run-name", help="MLflow run name.  [default: a generated one]")
@tracking_uri_option
@register_option
@click.option("--no-tracking", is_flag=True, help="Train without MLflow: no run is created.")
def train(dataset, preset, experiment, run_name, tracking_uri, register, no_tracking, **overrides):
    """Train a MicroGPT, logging every step and a snapshot per evaluation to MLflow."""
    from .config import build_config
    from .corpus import load_corpus, prepare_dataset
    from .trainer import Trainer

    if register and no_tracking:
        raise click.UsageError("--register needs tracking; drop --no-tracking")
    config = build_config(preset, dataset=dataset, **overrides)
    data = prepare_dataset(load_corpus(dataset), config.model.block_size)
    with data_parallel() as parallel:
        trainer = Trainer(config, data, device=parallel.device if parallel else None)
        tracking = None if no_tracking else (tracking_uri, experiment, register)
        train_with_progress(trainer, tracking, run_name, register=register, parallel=parallel)


@contextlib.contextmanager
def data_parallel():
    """Under ``torchrun`` with several processes, this process's rank of a data-parallel
    training (see ``distributed``); otherwise None."""
    from .distributed import DataParallel, world

    if world()[1] == 1:
        yield None
        return
    parallel = DataParallel()
    try:
        yield parallel
        parallel.finish()
    except KeyboardInterrupt:
        if parallel.agreed_to_stop:  # every rank stopped at the same step; aborts don't wait
            parallel.finish()
        raise
    finally:
        parallel.close()


def _mlflow_tracker(tracking_uri, experiment, register):
    from .mlflow_tracker import MlflowTracker
    from .registry import check_name

    if register:
        check_name(register)
    return MlflowTracker(tracking_uri, experiment)


def train_with_progress(trainer, tracking, run_name, tags=None, register=None, parallel=None):
    """Run a training with a progress display; Ctrl-C and SIGTERM stop it cleanly.

    ``tracking``: (tracking URI, experiment, model name to register) for an MLflow run, None
    for none. Of a data-parallel training (``parallel``) only rank 0 tracks and reports."""
    from .tracker import Tracker
    from .trainer import TrainingStopped, run_training

    if parallel:
        parallel.attach(trainer)
    if parallel and parallel.rank:
        return _train_quietly(trainer)
    tracker = _mlflow_tracker(*tracking) if tracking else Tracker()
    if parallel:
        tags = {**(tags or {}), WORLD_SIZE_TAG: str(parallel.size)}
    from .progress import TrainingProgress

    config, data = trainer.config, trainer.dataset
    start = f"from step {trainer.step} " if trainer.step else ""
    where = f"{parallel.size} processes" if parallel else trainer.device
    click.echo(f"Training {config.preset} MicroGPT ({trainer.model.num_parameters():,} parameters) "
               f"{start}on {data.name} ({len(data.train_ids):,} train / {len(data.val_ids):,} val "
               f"characters, vocabulary {data.tokenizer.vocab_size}) on {where}.")
    progress = TrainingProgress(config.train.max_iters, trainer)

    def announce():
        if tracker.run_id:
            click.echo(f"Logging to MLflow run {tracker.run_id} ({tracker.run_name}) at {redact(tracker.uri)}")

    try:
        with _stop_signals(_stopper(trainer)), progress:
            run_training(trainer, tracker, run_name, tags=tags, on_start=announce,
                         on_progress=progress.update)
    except (KeyboardInterrupt, TrainingStopped):
        click.echo(f"Stopped at step {trainer.step}." + (
            f" Run {tracker.run_id} is marked KILLED; everything logged so far is kept."
            if tracker.run_id else ""), err=True)
        if parallel and not trainer.stop_requested:
            return  # asked through the store: a clean end for torchrun, on every rank
        raise KeyboardInterrupt from None
    finally:
        if getattr(tracker, "failed_writes", 0):
            click.echo(f"Note: {tracker.failed_writes} write(s) to the tracking store failed and were "
                       f"retried (last error: {tracker.last_failure}).", err=True)
    final = trainer.last_eval
    click.echo(f"Done: step {trainer.step}, val loss {final.get(VAL_LOSS, float('nan')):.4f}, "
               f"train loss {final.get(EVAL_TRAIN_LOSS, float('nan')):.4f}.")
    if tracker.run_id:
        click.echo(f"Run {tracker.run_id} ({tracker.run_name}) in experiment {tracker.experiment!r}:")
        click.echo(redact(f"  inspect: llmb runs show {tracker.run_id}" + _uri_flag(tracker.uri)))
        click.echo(redact(f"  browse:  {_mlflow_ui_command(tracker.uri)}"))
    if register:
        from .registry import ModelLibrary

        version = ModelLibrary(tracker.uri).save(tracker.run_id, register)
        click.echo(f"Registered step {version.step} as model {version.ref} (models:/{version.ref}).")


def _train_quietly(trainer) -> None:
    """A data-parallel rank other than 0: train in step with rank 0, stop when it stops."""
    from .tracker import Tracker
    from .trainer import TrainingStopped, run_training

    try:
        with _stop_signals(lambda *_: trainer.request_stop()):
            run_training(trainer, Tracker())
    except TrainingStopped:
        if trainer.stop_requested:  # a signal; otherwise rank 0 was asked and ends cleanly
            raise KeyboardInterrupt from None


@contextlib.contextmanager
def _stop_signals(handler):
    """Ctrl-C and SIGTERM call ``handler`` while the block runs."""
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _stopper(trainer):
    """Ctrl-C or SIGTERM: finish the current step, checkpoint and stop; a second one aborts."""
    def stop(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.request_stop()
        click.echo("\nStopping after this step (press Ctrl-C again to abort at once)...", err=True)

    return stop


def _uri_flag(uri: str) -> str:
    from .store import resolve_uri

    return "" if uri == resolve_uri(None) else f" --tracking-uri {uri}"


def _mlflow_ui_command(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    here = os.path.abspath("mlflow.db")
    if uri in ("sqlite:///mlflow.db", f"sqlite:///{here}") and not os.environ.get("MLFLOW_TRACKING_URI"):
        return "mlflow ui   (in this folder)"
    return f"mlflow ui --backend-store-uri {uri}"


@cli.group()
def runs():
    """List, inspect and control training runs."""


@runs.command("list")
@experiment_option
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@tracking_uri_option
def runs_list(experiment, limit, tracking_uri):
    """Training runs, newest first: id, name, status, steps and last losses."""
    from .control import trainer_state
    from .reader import RunReader

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
        from . import control as channel
        from .store import client

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
    from .control import mark_failed
    from .store import client

    why = mark_failed(client(tracking_uri), run_id, force)
    click.echo(f"Run {run_id} is marked FAILED ({why}); everything it logged is kept.")


@runs.command("sync")
@click.option("--tracking-uri", metavar="URI",
              help="Send to this store instead of the one each run was logged to (the store moved).")
def runs_sync(tracking_uri):
    """Send training data kept on this machine because the tracking store was unreachable when
    a training ended (kept under $LLMB_SPOOL_DIR, else ~/.local/share/llmbreaker/spool), and
    end those runs with the status their trainings ended with."""
    from .spool import pending, send, spool_root

    folders = pending()
    if not folders:
        click.echo(f"Nothing to send: no unsent training data in {spool_root()}.")
        return
    for folder in folders:
        spooled = send(folder, tracking_uri)
        click.echo(f"Sent {spooled.describe()} of run {spooled.run_id} to "
                   f"{tracking_uri or spooled.tracking_uri}; it is {spooled.status}.")


@runs.command("show")
@click.argument("run_id")
@tracking_uri_option
def runs_show(run_id, tracking_uri):
    """A run's settings, snapshot steps and its latest sample."""
    from .control import trainer_state
    from .reader import RunReader

    reader = RunReader(tracking_uri)
    run = reader.run(run_id)
    click.echo(f"Run {run.run_id} ({run.run_name}): {trainer_state(run.tags, run.status, run.start_time)}, "
               f"step {run.last_step}/{run.max_iters or '?'}")
    for key in (TRAIN_LOSS, *EVAL_METRICS):
        if key in run.latest:
            step, value = run.latest[key]
            click.echo(f"  {key}: {value:.4f} at step {step}")
    click.echo("Params:")
    for key in sorted(run.params):
        click.echo(f"  {key} = {run.params[key]}")
    checkpoints = reader.checkpoint_steps(run_id, run=run)
    click.echo(f"Checkpoints ({len(checkpoints)}): {_step_list(checkpoints)}")
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
    from .cli_models import generate, models, resume
    from .cli_viewer import dash, demo

    for command in (models, resume, generate, dash, demo):
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
